package dev.jlens.hub;

import dev.jlens.model.CacheRequest;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.load.ModelResolver;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hub downloads against {@link FakeHub} on loopback, serving the gpt_neox_tiny_fp16 fixture as a repository. */
class HubClientTest {

    static final String REPO = "fake-org/tiny-neox";
    static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
    static final String WEIGHTS = "model.safetensors";
    /** Fast retries so the fault tests stay quick; the behaviour is the same as with the defaults. */
    static final HubClient.Options FAST = new HubClient.Options(4, Duration.ofMillis(20), Duration.ofSeconds(5),
            Duration.ofSeconds(10), Duration.ofSeconds(2));

    static Map<String, byte[]> files;
    static Path fixture;

    @TempDir
    Path tmp;

    @BeforeAll
    static void readFixture() throws IOException {
        fixture = Fixtures.dir("gpt_neox_tiny_fp16");
        files = new LinkedHashMap<>();
        for (String f : List.of("config.json", "tokenizer.json", WEIGHTS)) {
            files.put(f, Files.readAllBytes(fixture.resolve(f)));
        }
    }

    FakeHub hub() throws IOException {
        // README.md and .gitattributes are listed but never needed: they must not be fetched.
        return new FakeHub(REPO, COMMIT, files, Set.of(WEIGHTS), List.of(".gitattributes", "README.md"), 60,
                Duration.ofSeconds(60));
    }

    Map<String, String> env(FakeHub hub, String... more) {
        Map<String, String> env = new HashMap<>();
        env.put("HF_HUB_CACHE", tmp.resolve("hub").toString());
        env.put("HF_ENDPOINT", hub.endpoint().toString());
        for (int i = 0; i < more.length; i += 2) env.put(more[i], more[i + 1]);
        return env;
    }

    ModelResolver resolver(FakeHub hub, String... more) {
        return new ModelResolver(env(hub, more), tmp.resolve("home"));
    }

    HubClient fastClient(FakeHub hub, String... more) {
        return new HubClient(HubSettings.fromEnv(env(hub, more), tmp.resolve("home")), FAST);
    }

    Path repoDir() {
        return tmp.resolve("hub").resolve("models--fake-org--tiny-neox");
    }

    static String sha256(String file) {
        return FakeHub.sha256(files.get(file));
    }

    /** A forward over the snapshot's weights matches Hugging Face's activations (the fixture's golden values). */
    static void assertForwardMatchesHuggingFace(HookedModel m) {
        assertForwardMatchesHuggingFace(m, "gpt_neox_tiny_fp16");
    }

    static void assertForwardMatchesHuggingFace(HookedModel m, String fixtureName) {
        Fixtures.Golden g = Fixtures.golden(fixtureName);
        String hook = "ln_final.hook_normalized";
        double atol = g.json().at("/tolerances/per_hook/" + hook + "/recommended_atol").asDouble();
        List<Fixtures.Prompt> prompts = g.prompts().subList(0, 3);
        List<int[]> ids = prompts.stream().map(p -> m.encode(p.text(), null)).toList();
        ActivationCache cache = m.runWithCache(ids, CacheRequest.of(HookPattern.parse(hook)).pooling(Pooling.ALL).batchSize(3));
        for (Fixtures.Prompt p : prompts) {
            float[] want = g.tensor("p" + p.index() + "." + hook);
            double diff = Fixtures.maxAbsDiff(want, cache.perPrompt(hook).get(p.index()).data());
            assertTrue(atol > 0 && diff <= atol, "prompt " + p.index() + ": max abs error " + diff);
        }
    }

    @Test
    void downloadsIntoPythonCacheLayoutThenLoadsAndRunsOffTheCache() throws IOException {
        try (FakeHub hub = hub()) {
            Map<String, long[]> progress = new ConcurrentHashMap<>();
            ModelResolver resolver = new ModelResolver(env(hub, "HF_TOKEN", "hf_secret"), tmp.resolve("home"),
                    (file, done, total) -> {
                        assertTrue(total < 0 || done <= total, file + " " + done + "/" + total);
                        progress.put(file, new long[]{done, total});
                    });
            ModelLocation loc = resolver.resolve(REPO, null);

            Path snap = repoDir().resolve("snapshots").resolve(COMMIT);
            assertEquals(snap, loc.dir());
            assertEquals(COMMIT, Files.readString(repoDir().resolve("refs").resolve("main")), "refs/main, no newline");
            Map<String, String> blobOf = Map.of("config.json", FakeHub.gitSha1(files.get("config.json")),
                    "tokenizer.json", FakeHub.gitSha1(files.get("tokenizer.json")), WEIGHTS, sha256(WEIGHTS));
            for (var e : blobOf.entrySet()) {
                Path link = snap.resolve(e.getKey());
                assertTrue(Files.isSymbolicLink(link), e.getKey() + " is a link as huggingface_hub makes it");
                assertEquals(Path.of("..", "..", "blobs", e.getValue()), Files.readSymbolicLink(link));
                assertArrayEquals(files.get(e.getKey()), Files.readAllBytes(link));
                long size = files.get(e.getKey()).length;
                assertArrayEquals(new long[]{size, size}, progress.get(e.getKey()), "size known up front, progress done");
            }
            try (Stream<Path> s = Files.list(snap)) {
                assertEquals(Set.of("config.json", "tokenizer.json", WEIGHTS),
                        Set.copyOf(s.map(p -> p.getFileName().toString()).toList()), "only the needed files");
            }
            try (Stream<Path> s = Files.list(repoDir().resolve("blobs"))) {
                assertEquals(Set.copyOf(blobOf.values()), Set.copyOf(s.map(p -> p.getFileName().toString()).toList()),
                        "no .incomplete left behind");
            }
            // The token goes to the hub only; the CDN (another origin) never sees it.
            assertFalse(hub.requests("hub", "GET").isEmpty());
            hub.requests().stream().filter(r -> r.server().equals("hub"))
                    .forEach(r -> assertEquals("Bearer hf_secret", r.authorization(), r.path()));
            assertEquals(1, hub.requests("cdn", "GET").size());
            assertNull(hub.requests("cdn", "GET").getFirst().authorization(), "no token sent to the CDN");

            try (HookedModel m = ModelLoader.loadFolder(loc)) {
                assertForwardMatchesHuggingFace(m);
            }

            int before = hub.requests().size();
            assertEquals(snap, resolver.resolve(REPO, "main").dir());
            assertEquals(snap, resolver.resolve(REPO, COMMIT).dir());
            assertEquals(before, hub.requests().size(), "a cached model is used without asking the hub");
            assertFalse(hub.overflowed());
        }
    }

    /**
     * The retry asks only for the rest: it starts after byte 0 and no later than the server got before failing
     * (bytes in flight when a connection breaks may be lost; those are asked for again).
     */
    static void assertResumedWithin(FakeHub.Request retry, long sentBeforeFault) {
        String range = retry.range();
        assertTrue(range != null && range.matches("bytes=\\d+-"), "a Range request: " + range);
        long from = Long.parseLong(range.substring(6, range.length() - 1));
        assertTrue(from > 0 && from <= sentBeforeFault, "resumed at " + from + " after " + sentBeforeFault + " sent");
    }

    @Test
    void droppedConnectionResumesWithRangeRequest() throws IOException {
        try (FakeHub hub = hub(); HubClient client = fastClient(hub)) {
            long cut = files.get(WEIGHTS).length / 3;
            hub.faultFile = WEIGHTS;
            hub.faultAt = cut;
            Path snap = client.download(REPO, "main", DownloadProgress.NONE);

            List<FakeHub.Request> gets = hub.requests("cdn", "GET");
            assertEquals(2, gets.size(), "one dropped transfer, one resumed");
            assertNull(gets.get(0).range());
            assertResumedWithin(gets.get(1), cut);
            assertArrayEquals(files.get(WEIGHTS), Files.readAllBytes(snap.resolve(WEIGHTS)));
            assertFalse(Files.exists(repoDir().resolve("blobs").resolve(sha256(WEIGHTS) + ".incomplete")));
        }
    }

    @Test
    void stalledConnectionIsDroppedAndResumed() throws IOException {
        try (FakeHub hub = hub(); HubClient client = fastClient(hub)) {
            long cut = files.get(WEIGHTS).length / 2;
            hub.faultFile = WEIGHTS;
            hub.faultAt = cut;
            hub.faultStall = Duration.ofSeconds(8);
            Path snap = client.download(REPO, "main", DownloadProgress.NONE);

            List<FakeHub.Request> gets = hub.requests("cdn", "GET");
            assertEquals(2, gets.size());
            assertResumedWithin(gets.get(1), cut);
            assertArrayEquals(files.get(WEIGHTS), Files.readAllBytes(snap.resolve(WEIGHTS)));
            assertFalse(Thread.currentThread().isInterrupted(), "the watchdog's interrupt does not leak");
        }
    }

    @Test
    void resumesAnIncompleteFileLeftByAnEarlierRun() throws IOException {
        try (FakeHub hub = hub(); HubClient client = fastClient(hub)) {
            int have = 4_000_000;
            Path incomplete = repoDir().resolve("blobs").resolve(sha256(WEIGHTS) + ".incomplete");
            Files.createDirectories(incomplete.getParent());
            Files.write(incomplete, java.util.Arrays.copyOf(files.get(WEIGHTS), have));

            Path snap = client.download(REPO, "main", DownloadProgress.NONE);
            List<FakeHub.Request> gets = hub.requests("cdn", "GET");
            assertEquals(1, gets.size());
            assertEquals("bytes=" + have + "-", gets.getFirst().range());
            assertArrayEquals(files.get(WEIGHTS), Files.readAllBytes(snap.resolve(WEIGHTS)));
        }
    }

    @Test
    void wrongChecksumIsRefusedAndTheFileRemoved() throws IOException {
        try (FakeHub hub = hub(); HubClient client = fastClient(hub)) {
            hub.corruptFile = WEIGHTS;
            JlensException e = assertThrows(JlensException.class,
                    () -> client.download(REPO, "main", DownloadProgress.NONE));
            assertTrue(e.getMessage().contains("checksum mismatch for " + WEIGHTS), e.getMessage());
            assertTrue(e.getMessage().contains(sha256(WEIGHTS)), "names the expected sha256: " + e.getMessage());
            Path blobs = repoDir().resolve("blobs");
            assertFalse(Files.exists(blobs.resolve(sha256(WEIGHTS))));
            assertFalse(Files.exists(blobs.resolve(sha256(WEIGHTS) + ".incomplete")));
            assertFalse(Files.exists(repoDir().resolve("snapshots").resolve(COMMIT).resolve(WEIGHTS), NOFOLLOW));
            assertFalse(Files.exists(repoDir().resolve("refs").resolve("main")), "an incomplete snapshot gets no ref");

            // A healthy server afterwards: the next run completes, fetching only what is missing.
            hub.corruptFile = null;
            int gets = hub.requests("hub", "GET").size();
            client.download(REPO, "main", DownloadProgress.NONE);
            assertEquals(gets + 1, hub.requests("hub", "GET").size(), "only the listing again; small files cached");
        }
    }

    private static final java.nio.file.LinkOption NOFOLLOW = java.nio.file.LinkOption.NOFOLLOW_LINKS;

    @Test
    void unknownRevisionOrRepositoryIsAClearError() throws IOException {
        try (FakeHub hub = hub()) {
            JlensException e = assertThrows(JlensException.class,
                    () -> resolver(hub).resolve(REPO, "no-such-branch"));
            assertTrue(e.getMessage().contains(REPO) && e.getMessage().contains("'no-such-branch' does not exist"),
                    e.getMessage());
            JlensException r = assertThrows(JlensException.class,
                    () -> resolver(hub).resolve("fake-org/nothing-here", "v2"));
            assertTrue(r.getMessage().contains("fake-org/nothing-here at revision v2: not found"), r.getMessage());
            assertFalse(Files.exists(repoDir().resolve("snapshots")));
        }
    }

    @Test
    void unreachableHubIsAClearError() throws IOException {
        int closedPort;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closedPort = socket.getLocalPort();
        }
        Map<String, String> env = Map.of("HF_HUB_CACHE", tmp.resolve("hub").toString(),
                "HF_ENDPOINT", "http://127.0.0.1:" + closedPort);
        JlensException e = assertThrows(JlensException.class,
                () -> new ModelResolver(env, tmp.resolve("home")).resolve(REPO, null));
        assertTrue(e.getMessage().contains("cannot reach the Hugging Face Hub") && e.getMessage().contains(REPO)
                && e.getMessage().contains("HF_HUB_OFFLINE=1"), e.getMessage());
    }

    @Test
    void gatedModelTellsTheUserToSetHfToken() throws IOException {
        try (FakeHub hub = hub()) {
            hub.requiredToken = "hf_granted";
            JlensException anon = assertThrows(JlensException.class, () -> resolver(hub).resolve(REPO, null));
            assertTrue(anon.getMessage().contains("401") && anon.getMessage().contains("set HF_TOKEN"), anon.getMessage());
            JlensException denied = assertThrows(JlensException.class,
                    () -> resolver(hub, "HF_TOKEN", "hf_other").resolve(REPO, null));
            assertTrue(denied.getMessage().contains("gated") && denied.getMessage().contains("HF_TOKEN"),
                    denied.getMessage());
            assertFalse(denied.getMessage().contains("hf_other"), "the token itself is never printed");

            ModelLocation ok = resolver(hub, "HF_TOKEN", "hf_granted").resolve(REPO, null);
            assertTrue(HubCache.missingFiles(ok.dir()).isEmpty());
        }
    }

    @Test
    void offlineModeNeverTouchesTheNetwork() throws IOException {
        try (FakeHub hub = hub()) {
            JlensException e = assertThrows(JlensException.class,
                    () -> resolver(hub, "HF_HUB_OFFLINE", "1").resolve(REPO, null));
            assertTrue(e.getMessage().contains(REPO) && e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
            assertEquals(List.of(), hub.requests());
        }
    }

    @Test
    void cacheWrittenByPythonIsUsedWithZeroRequests() throws IOException {
        // The layout huggingface_hub's snapshot_download leaves: blobs named by hash, relative links, refs/main.
        Path repo = repoDir();
        Path snap = repo.resolve("snapshots").resolve(COMMIT);
        Files.createDirectories(snap);
        Files.createDirectories(repo.resolve("blobs"));
        for (var e : files.entrySet()) {
            String blob = e.getKey().equals(WEIGHTS) ? sha256(WEIGHTS) : FakeHub.gitSha1(e.getValue());
            Files.write(repo.resolve("blobs").resolve(blob), e.getValue());
            Files.createSymbolicLink(snap.resolve(e.getKey()), Path.of("../../blobs/" + blob));
        }
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs").resolve("main"), COMMIT);
        try (FakeHub hub = hub()) {
            hub.failEverything = true;
            ModelLocation byBranch = resolver(hub).resolve(REPO, null);
            ModelLocation byCommit = resolver(hub).resolve(REPO, COMMIT);
            assertEquals(snap, byBranch.dir());
            assertEquals(snap, byCommit.dir());
            try (HookedModel m = ModelLoader.loadFolder(byBranch)) {
                assertForwardMatchesHuggingFace(m);
            }
            assertEquals(List.of(), hub.requests(), "no network access for a cached model");
        }
    }

    @Test
    void incompleteSnapshotGetsOnlyItsMissingFiles() throws IOException {
        // transformers' AutoConfig leaves a snapshot holding config.json alone.
        try (FakeHub hub = hub(); HubClient client = fastClient(hub)) {
            Path snap = repoDir().resolve("snapshots").resolve(COMMIT);
            Files.createDirectories(snap);
            Files.write(snap.resolve("config.json"), files.get("config.json"));
            Files.createDirectories(repoDir().resolve("refs"));
            Files.writeString(repoDir().resolve("refs").resolve("main"), COMMIT);
            assertEquals(List.of("tokenizer.json", WEIGHTS + " (or a sharded index, or pytorch_model.bin)"),
                    HubCache.missingFiles(snap));

            ModelLocation loc = resolver(hub).resolve(REPO, null);
            assertTrue(HubCache.missingFiles(loc.dir()).isEmpty());
            assertTrue(hub.requests().stream().noneMatch(r -> r.path().endsWith("/config.json")),
                    "config.json was already there");
        }
    }

    @Test
    void shardedSafetensorsComeWithEveryShardAndNothingElse() throws IOException {
        Path dir = Fixtures.dir("gpt_neox_tiny_sharded");
        Map<String, byte[]> sharded = new LinkedHashMap<>();
        List<String> shards = List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        for (String f : List.of("config.json", "tokenizer.json", "model.safetensors.index.json")) {
            sharded.put(f, Files.readAllBytes(dir.resolve(f)));
        }
        for (String f : shards) sharded.put(f, Files.readAllBytes(dir.resolve(f)));
        // pytorch_model.bin is listed too, as in many repositories: safetensors is preferred and the .bin not asked for.
        try (FakeHub hub = new FakeHub(REPO, COMMIT, sharded, Set.copyOf(shards), List.of("pytorch_model.bin"), 60,
                Duration.ofSeconds(60)); HubClient client = fastClient(hub)) {
            Path snap = client.download(REPO, null, DownloadProgress.NONE);
            try (Stream<Path> s = Files.list(snap)) {
                assertEquals(sharded.keySet(), Set.copyOf(s.map(p -> p.getFileName().toString()).toList()));
            }
            assertEquals(2, hub.requests("cdn", "GET").size());
            assertTrue(HubCache.missingFiles(snap).isEmpty());
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(REPO, null, snap, false))) {
                assertForwardMatchesHuggingFace(m, "gpt_neox_tiny_sharded");
            }
        }
    }

    @Test
    void concurrentDownloadsOfOneModelShareOneTransfer() throws Exception {
        try (FakeHub hub = hub(); HubClient a = fastClient(hub); HubClient b = fastClient(hub)) {
            var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
            try {
                var fa = pool.submit(() -> a.download(REPO, "main", DownloadProgress.NONE));
                var fb = pool.submit(() -> b.download(REPO, "main", DownloadProgress.NONE));
                assertEquals(fa.get(), fb.get());
                assertArrayEquals(files.get(WEIGHTS), Files.readAllBytes(fa.get().resolve(WEIGHTS)));
            } finally {
                pool.shutdownNow();
            }
            assertEquals(1, hub.requests("cdn", "GET").size(), "the second waits on the lock, then finds the blob");
        }
    }

    @Test
    void namesFromTheServerCannotEscapeTheCache() {
        for (String bad : List.of("../evil", "a/../../b", "/etc/passwd", "a\\b", "", "c:/x", "a//b")) {
            assertThrows(JlensException.class, () -> HubCache.checkRepoPath(bad, "shard name"), bad);
        }
        assertEquals("sub/model-00001-of-00002.safetensors",
                HubCache.checkRepoPath("sub/model-00001-of-00002.safetensors", "shard name"));
        for (String bad : List.of("../x", "a/b", ".hidden", "")) {
            assertThrows(JlensException.class, () -> HubCache.checkBlobName(bad), bad);
        }
        assertEquals("abc", HubClient.normalizeEtag("W/\"abc\""));
        assertEquals("step%201%2Fx", HubClient.encode("step 1/x", false));
        assertEquals("dir/a%2Bb.json", HubClient.encode("dir/a+b.json", true));
    }
}
