package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every command's --help renders as written: picocli formats descriptions with String.format, so a bare "%"
 * ("95% CIs") makes it print a warning on stderr and the raw text instead.
 */
class HelpTextTest {

    @Test
    void everyCommandsHelpRendersWithoutPicocliWarnings() {
        List<CommandLine> commands = new ArrayList<>();
        collect(new CommandLine(new JlensCli()), commands);
        assertTrue(commands.size() > 20, "found " + commands.size() + " commands");
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        List<String> warned = new ArrayList<>();
        try {
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            for (CommandLine c : commands) {
                captured.reset();
                String usage = c.getUsageMessage();
                assertTrue(usage.contains("Usage:"), c.getCommandName());
                String e = captured.toString(StandardCharsets.UTF_8);
                if (e.contains("picocli WARN")) warned.add(c.getCommandName() + ": " + e.lines().findFirst().orElse(""));
            }
        } finally {
            System.setErr(err);
        }
        assertEquals(List.of(), warned);
    }

    private static void collect(CommandLine c, List<CommandLine> out) {
        out.add(c);
        for (CommandLine sub : c.getSubcommands().values()) {
            if (!out.contains(sub)) collect(sub, out);
        }
    }
}
