package dev.jlens.generate;

/**
 * Asked after every forward pass of a generation, for each sequence still running, whether it must end before
 * its next token is sampled. A guard that scores the activations of the tokens just fed (through a hook on the
 * same forward pass) answers it; see {@code dev.jlens.detect.GenerationGuard}.
 */
@FunctionalInterface
public interface StopCheck {

    StopCheck NEVER = sequence -> false;

    boolean stopNow(int sequence);
}
