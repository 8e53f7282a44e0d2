package dev.jlens;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

/**
 * The walls inside jlens-core (docs/ARCHITECTURE.md), checked on the compiled classes so that a wall is
 * broken by code, not only by an import line. The walls between modules are in jlens-cli's ModuleWallsTest,
 * where all three modules' classes are visible.
 */
@AnalyzeClasses(packages = "dev.jlens", importOptions = ImportOption.DoNotIncludeTests.class)
class CoreWallsTest {

    /**
     * Kernels (and the device backends that will sit beside them) compute on tensors and know nothing of
     * models, checkpoints, hooks, the hub or tokenizers, so that a backend can be written and tested alone.
     */
    @ArchTest
    static final ArchRule kernelsKnowNoModels = noClasses()
            .that().resideInAnyPackage("dev.jlens.kernels..", "dev.jlens.backend..")
            .should().dependOnClassesThat().resideInAnyPackage(
                    "dev.jlens.model..", "dev.jlens.load..", "dev.jlens.hooks..", "dev.jlens.hub..",
                    "dev.jlens.tokenizer..");

    /**
     * Every subpackage of dev.jlens.model is one family; a family uses the shared runner and parts in
     * dev.jlens.model, never another family's code, so families are added and removed one folder at a time.
     */
    @ArchTest
    static final ArchRule familiesKnowNoOtherFamily = slices()
            .matching("dev.jlens.model.(*)..").namingSlices("family $1")
            .should().notDependOnEachOther();

    /** load builds models; a model that reached back into load would make the two one tangle. */
    @ArchTest
    static final ArchRule modelDoesNotUseLoad = noClasses()
            .that().resideInAPackage("dev.jlens.model..")
            .should().dependOnClassesThat().resideInAPackage("dev.jlens.load..");
}
