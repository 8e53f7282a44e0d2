package dev.jlens;

/**
 * The one error type jlens throws for bad input: a checkpoint that does not parse, a prompt file that is
 * empty, an argument out of range. The message is meant for a person: it names the file, field or argument
 * and says what was expected, so the CLI prints it as one paragraph instead of a stack trace.
 */
public class JlensException extends RuntimeException {
    public JlensException(String message) {
        super(message);
    }

    public JlensException(String message, Throwable cause) {
        super(message, cause);
    }
}
