package dev.jlens.cuda;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where the CUDA shared libraries are on this machine. There are no native jars: the driver ({@code libcuda}),
 * NVRTC and cuBLAS are found at run time in the places an installation puts them, in this order:
 * {@code JLENS_CUDA_LIBS} (folders, ':'-separated), {@code LD_LIBRARY_PATH}, {@code /usr/local/cuda/lib64} and
 * every {@code /usr/local/cuda-X.Y/lib64} (newest first), the system folders, {@code ldconfig -p}, and the
 * {@code nvidia/<component>/lib} folders of Python environments (the NVIDIA wheels that PyTorch installs,
 * which is where CUDA 13's cuBLAS and NVRTC live on a machine with only a driver and pip packages).
 * The search is written out so that a missing library's error can say exactly where it looked.
 *
 * @param folders the folders searched, in order (without duplicates)
 * @param ldconfig soname → path as {@code ldconfig -p} lists them (empty when ldconfig is absent)
 */
public record CudaLibraries(List<Path> folders, Map<String, Path> ldconfig) {

    /** One library to find: the sonames tried (preferred first) and what it is, for messages. */
    public record Wanted(String what, List<String> names) {
    }

    public static final Wanted DRIVER = new Wanted("the CUDA driver (libcuda, installed with the NVIDIA driver)",
            List.of("libcuda.so.1", "libcuda.so"));
    public static final Wanted NVRTC = new Wanted("NVRTC, the CUDA runtime compiler (libnvrtc; CUDA toolkit or the nvidia-cuda-nvrtc wheel)",
            List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"));
    public static final Wanted CUBLAS = new Wanted("cuBLAS (libcublas; CUDA toolkit or the nvidia-cublas wheel)",
            List.of("libcublas.so.13", "libcublas.so.12", "libcublas.so"));

    /** A found library, and how the search went (for the message when it is unusable). */
    public record Found(Path path, String soname) {
    }

    /** The search on this machine, from its environment. */
    public static CudaLibraries discover() {
        return discover(System.getenv(), Path.of("/"), true);
    }

    /**
     * The search under {@code root} (tests use a temporary folder) with the given environment; {@code runTools}
     * says whether {@code ldconfig -p} and {@code python3} may be asked.
     */
    static CudaLibraries discover(Map<String, String> env, Path root, boolean runTools) {
        Set<Path> dirs = new LinkedHashSet<>();
        addPathList(dirs, env.get("JLENS_CUDA_LIBS"));
        addPathList(dirs, env.get("LD_LIBRARY_PATH"));
        Path cudaHome = env.get("CUDA_HOME") != null ? Path.of(env.get("CUDA_HOME")) : null;
        if (cudaHome != null) dirs.add(cudaHome.resolve("lib64"));
        dirs.add(root.resolve("usr/local/cuda/lib64"));
        dirs.addAll(versionedCuda(root.resolve("usr/local")));
        for (String s : List.of("usr/local/nvidia/lib64", "usr/local/nvidia/lib", "usr/lib/x86_64-linux-gnu", "usr/lib64",
                "usr/lib", "usr/lib/wsl/lib")) {
            dirs.add(root.resolve(s));
        }
        for (Path site : pythonSitePackages(env, root, runTools)) dirs.addAll(nvidiaWheelLibs(site));
        Map<String, Path> ld = runTools ? ldconfigList() : Map.of();
        return new CudaLibraries(List.copyOf(dirs), ld);
    }

    private static void addPathList(Set<Path> dirs, String list) {
        if (list == null || list.isBlank()) return;
        for (String s : list.split(":")) if (!s.isBlank()) dirs.add(Path.of(s));
    }

    /** /usr/local/cuda-13.0/lib64 before /usr/local/cuda-12.8/lib64. */
    static List<Path> versionedCuda(Path usrLocal) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(usrLocal)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(usrLocal, "cuda-*")) {
            for (Path p : ds) out.add(p.resolve("lib64"));
        } catch (IOException e) {
            return out;
        }
        out.sort(Comparator.comparing((Path p) -> versionKey(p.getParent().getFileName().toString())).reversed());
        return out;
    }

    private static String versionKey(String name) {
        Matcher m = Pattern.compile("cuda-(\\d+)\\.?(\\d*)").matcher(name);
        if (!m.find()) return name;
        return String.format("%04d.%04d", Integer.parseInt(m.group(1)), m.group(2).isEmpty() ? 0 : Integer.parseInt(m.group(2)));
    }

    /** site-packages / dist-packages folders of the Python environments that may hold NVIDIA wheels. */
    static List<Path> pythonSitePackages(Map<String, String> env, Path root, boolean runTools) {
        Set<Path> out = new LinkedHashSet<>();
        if (env.get("VIRTUAL_ENV") != null) out.addAll(globLib(Path.of(env.get("VIRTUAL_ENV")).resolve("lib")));
        if (env.get("CONDA_PREFIX") != null) out.addAll(globLib(Path.of(env.get("CONDA_PREFIX")).resolve("lib")));
        if (runTools) out.addAll(pythonSysPath());
        for (String base : List.of("usr/local/lib", "usr/lib", "opt/conda/lib")) out.addAll(globLib(root.resolve(base)));
        if (env.get("HOME") != null) out.addAll(globLib(Path.of(env.get("HOME")).resolve(".local/lib")));
        return List.copyOf(out);
    }

    /** lib/python3.X/{site,dist}-packages under a prefix. */
    private static List<Path> globLib(Path lib) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(lib)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(lib, "python3*")) {
            for (Path py : ds) {
                for (String s : List.of("site-packages", "dist-packages")) {
                    if (Files.isDirectory(py.resolve(s))) out.add(py.resolve(s));
                }
            }
        } catch (IOException e) {
            return out;
        }
        out.sort(Comparator.reverseOrder());
        return out;
    }

    /** nvidia/X/lib (and lib64) inside one site-packages folder: nvidia/cu13/lib, nvidia/cublas/lib, ... */
    static List<Path> nvidiaWheelLibs(Path site) {
        List<Path> out = new ArrayList<>();
        Path nv = site.resolve("nvidia");
        if (!Files.isDirectory(nv)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(nv)) {
            for (Path comp : ds) {
                for (String s : List.of("lib", "lib64")) if (Files.isDirectory(comp.resolve(s))) out.add(comp.resolve(s));
            }
        } catch (IOException e) {
            return out;
        }
        out.sort(Comparator.reverseOrder());
        return out;
    }

    /** The python3 on PATH's sys.path entries, if there is one (it answers in well under a second). */
    private static List<Path> pythonSysPath() {
        List<String> lines = run(List.of("python3", "-c", "import sys\nfor p in sys.path: print(p)"));
        List<Path> out = new ArrayList<>();
        for (String l : lines) {
            if (l.endsWith("site-packages") || l.endsWith("dist-packages")) out.add(Path.of(l));
        }
        return out;
    }

    private static final Pattern LDCONFIG_LINE = Pattern.compile("^\\s*(\\S+)\\s+\\(([^)]*)\\)\\s+=>\\s+(\\S+)\\s*$");

    private static Map<String, Path> ldconfigList() {
        List<String> lines = run(List.of("ldconfig", "-p"));
        if (lines.isEmpty()) lines = run(List.of("/sbin/ldconfig", "-p"));
        return parseLdconfig(lines);
    }

    /** soname → path from {@code ldconfig -p} output, 64-bit x86 entries only (the first listed wins). */
    static Map<String, Path> parseLdconfig(List<String> lines) {
        Map<String, Path> out = new java.util.LinkedHashMap<>();
        for (String l : lines) {
            Matcher m = LDCONFIG_LINE.matcher(l);
            if (!m.matches()) continue;
            String flags = m.group(2);
            if (flags.contains("x86-64") || !flags.contains(",")) out.putIfAbsent(m.group(1), Path.of(m.group(3)));
        }
        return Map.copyOf(out);
    }

    private static List<String> run(List<String> command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(false).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            List<String> lines = new ArrayList<>();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String l;
                while ((l = r.readLine()) != null) lines.add(l);
            }
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return List.of();
            }
            return lines;
        } catch (IOException e) {
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }

    /** The first file of {@code wanted}'s names in the search order: folders first, then ldconfig's list. */
    public Optional<Found> find(Wanted wanted) {
        for (String name : wanted.names()) {
            for (Path d : folders) {
                Path f = d.resolve(name);
                if (Files.isRegularFile(f)) return Optional.of(new Found(f, name));
            }
            Path p = ldconfig.get(name);
            if (p != null && Files.isRegularFile(p)) return Optional.of(new Found(p, name));
        }
        return Optional.empty();
    }

    /** A file next to {@code found} whose name starts with {@code prefix} (libnvrtc-builtins.so.13.0, libcublasLt.so.13). */
    public static Optional<Path> sibling(Found found, String prefix) {
        Path dir = found.path().getParent();
        if (dir == null || !Files.isDirectory(dir)) return Optional.empty();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, prefix + "*")) {
            List<Path> all = new ArrayList<>();
            for (Path p : ds) if (Files.isRegularFile(p)) all.add(p);
            all.sort(Comparator.comparing((Path p) -> p.getFileName().toString().length()).reversed());
            return all.stream().findFirst();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** What a "not found" message lists: the names tried and every folder looked in. */
    public String describeSearch(Wanted wanted) {
        StringBuilder sb = new StringBuilder();
        sb.append("looked for ").append(String.join(" / ", wanted.names())).append(" in ");
        List<String> existing = new ArrayList<>(), missing = new ArrayList<>();
        for (Path d : folders) (Files.isDirectory(d) ? existing : missing).add(d.toString());
        sb.append(existing.isEmpty() ? "(no existing folder)" : String.join(", ", existing));
        if (!missing.isEmpty()) sb.append(" (also tried, absent: ").append(String.join(", ", missing)).append(")");
        sb.append(ldconfig.isEmpty() ? "; ldconfig -p gave nothing" : "; and in ldconfig -p's " + ldconfig.size() + " entries");
        List<String> cudaLike = new ArrayList<>();
        for (String k : ldconfig.keySet()) if (k.startsWith("libcu") || k.startsWith("libnvrtc")) cudaLike.add(k);
        if (!cudaLike.isEmpty()) sb.append(" (CUDA-like ones there: ").append(String.join(", ", cudaLike.stream().sorted().toList())).append(")");
        return sb.toString();
    }
}
