package dev.jlens.cli;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The walls between modules (docs/ARCHITECTURE.md): jlens-core knows neither analysis nor the command line,
 * and jlens-analysis does not know the command line. Maven's module graph already keeps a class of one module
 * from using a class of a module it does not depend on; what it cannot see is a package name reused across
 * modules, or a reference by name that resolves nowhere. So each module's packages are read off where its
 * classes were loaded from (today analysis owns dev.jlens.{detect,geometry,prompts,stats,steering} and the CLI
 * dev.jlens.cli), and a new package is covered without editing this test. The walls inside jlens-core are
 * in jlens-core's CoreWallsTest.
 */
class ModuleWallsTest {

    /** A module's classes: target/classes inside the reactor, or its jar (never the -tests jar). */
    private static final Pattern MODULE_LOCATION =
            Pattern.compile("/(jlens-[a-z]+)(?:/target/classes/|(?:-[^/!]*)?(?<!-tests)\\.jar!/)");

    private static final JavaClasses CLASSES = new ClassFileImporter()
            .withImportOption(new ImportOption.DoNotIncludeTests())
            .withImportOption(location -> !location.contains("-tests.jar"))
            .importPackages("dev.jlens");

    private static final Map<String, Set<String>> PACKAGES_BY_MODULE = packagesByModule();

    @Test
    void coreUsesNeitherAnalysisNorTheCommandLine() {
        String[] forbidden = packagePatterns("jlens-analysis", "jlens-cli");
        noClasses().that(inModule("jlens-core"))
                .should().dependOnClassesThat().resideInAnyPackage(forbidden)
                .orShould().resideInAnyPackage(forbidden)
                .check(CLASSES);
    }

    @Test
    void analysisDoesNotUseTheCommandLine() {
        String[] forbidden = packagePatterns("jlens-cli");
        noClasses().that(inModule("jlens-analysis"))
                .should().dependOnClassesThat().resideInAnyPackage(forbidden)
                .orShould().resideInAnyPackage(forbidden)
                .check(CLASSES);
    }

    /** Each module's top packages below dev.jlens (dev.jlens.model, dev.jlens.stats, ...). */
    private static Map<String, Set<String>> packagesByModule() {
        Map<String, Set<String>> byModule = new TreeMap<>();
        for (JavaClass c : CLASSES) {
            String[] parts = c.getPackageName().split("\\.");
            if (parts.length < 3) continue;   // dev.jlens itself (JlensException) belongs to every module's view
            moduleOf(c).ifPresent(m -> byModule.computeIfAbsent(m, k -> new TreeSet<>())
                    .add(parts[0] + "." + parts[1] + "." + parts[2]));
        }
        return byModule;
    }

    private static DescribedPredicate<JavaClass> inModule(String module) {
        return DescribedPredicate.describe("are in " + module, c -> moduleOf(c).filter(module::equals).isPresent());
    }

    private static Optional<String> moduleOf(JavaClass c) {
        return c.getSource().map(s -> s.getUri().toString()).flatMap(uri -> {
            Matcher m = MODULE_LOCATION.matcher(uri);
            return m.find() ? Optional.of(m.group(1)) : Optional.empty();
        });
    }

    private static String[] packagePatterns(String... modules) {
        return Stream.of(modules).flatMap(m -> {
            Set<String> packages = PACKAGES_BY_MODULE.getOrDefault(m, Set.of());
            // An empty set would make the rule pass vacuously (a class path this test cannot read).
            assertFalse(packages.isEmpty(), "no classes of " + m + " found under dev.jlens; modules seen: "
                    + PACKAGES_BY_MODULE);
            return packages.stream();
        }).map(p -> p + "..").toArray(String[]::new);
    }
}
