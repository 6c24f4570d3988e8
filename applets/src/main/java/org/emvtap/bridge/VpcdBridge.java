package org.emvtap.bridge;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

/**
 * Runs the applets in jcardsim as a vpcd card, so pcscd and any PC/SC terminal see a card in
 * "Virtual PCD 00 00" (or whichever vpcd port).
 *
 * <pre>
 * java -jar target/emvtap-applets-bridge.jar [--vpcd HOST:PORT] [--profile card.json]
 *      [--install-only] [--aid HEX --nic BYTES] [--timing-log FILE] [--atr HEX] [--once]
 * java -jar target/emvtap-applets-bridge.jar --dump-perso card.json
 * </pre>
 *
 * <ul>
 *   <li>Without {@code --profile} the applets are installed unpersonalised (PPSE and one payment
 *       instance with {@code --aid}, default A000000333010101, ICC key of {@code --nic} bytes,
 *       default 128): personalise them through PC/SC with {@code emvtap card perso-applet}.</li>
 *   <li>{@code --profile F --install-only}: installed as the profile needs (one instance per
 *       application, its ICC key length as install parameter) but left unpersonalised.</li>
 *   <li>Connects with retries (exponential backoff 10 ms to 1 s, no fixed start-up sleep) and
 *       reconnects the same way when vpcd goes away, unless {@code --once}.</li>
 *   <li>Prints {@code READY} once the card is installed and {@code CONNECTED host:port} on each
 *       connection, on stdout, for whoever starts it.</li>
 *   <li>{@code --timing-log}: one line per APDU: INS, nanoseconds inside jcardsim, SW, command
 *       and response lengths (tab-separated), for bench/applet.py.</li>
 * </ul>
 */
public final class VpcdBridge {

    private static final byte[] DEFAULT_AID = Hex.decode("A000000333010101");

    private VpcdBridge() {
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 35963;
        Path profile = null;
        Path timingLog = null;
        byte[] aid = DEFAULT_AID;
        int nic = 128;
        byte[] atr = SimulatedCard.DEFAULT_ATR;
        boolean once = false;
        boolean installOnly = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--vpcd": {
                    String v = args[++i];
                    int colon = v.lastIndexOf(':');
                    host = v.substring(0, colon);
                    port = Integer.parseInt(v.substring(colon + 1));
                    break;
                }
                case "--profile": profile = Paths.get(args[++i]); break;
                case "--timing-log": timingLog = Paths.get(args[++i]); break;
                case "--aid": aid = Hex.decode(args[++i]); break;
                case "--nic": nic = Integer.parseInt(args[++i]); break;
                case "--atr": atr = Hex.decode(args[++i]); break;
                case "--once": once = true; break;
                case "--install-only": installOnly = true; break;
                case "--dump-perso":
                    dumpPerso(ProfileReader.load(Paths.get(args[++i])), System.out);
                    return;
                case "-h": case "--help":
                    System.out.println("usage: VpcdBridge [--vpcd HOST:PORT] [--profile FILE] [--aid HEX]"
                            + " [--nic BYTES] [--install-only] [--timing-log FILE] [--atr HEX] [--once]"
                            + " | --dump-perso FILE");
                    return;
                default:
                    System.err.println("unknown argument: " + a);
                    System.exit(2);
            }
        }
        SimulatedCard card = new SimulatedCard(atr);
        if (profile != null && installOnly) {
            card.install(ProfileReader.load(profile));
        } else if (profile != null) {
            card.installAndPersonalise(ProfileReader.load(profile));
        } else {
            card.installPpse();
            card.installPayment(aid, nic);
        }
        System.out.println("READY");
        System.out.flush();
        BufferedWriter timing = timingLog == null ? null
                : Files.newBufferedWriter(timingLog, StandardCharsets.US_ASCII);
        if (timing != null) {
            // SIGTERM ends the JVM mid-session: write what was measured on the way out
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    timing.flush();
                } catch (IOException e) {
                    System.err.println("timing log: " + e.getMessage());
                }
            }));
        }
        try {
            serve(card, host, port, once, timing);
        } finally {
            if (timing != null) {
                timing.close();
            }
        }
    }

    /** Prints the perso APDUs for a profile, one hex APDU a line (PPSE first). */
    static void dumpPerso(ProfileReader profile, PrintStream out) {
        for (byte[] apdu : PersoCommands.forPpse(profile.ppseFci)) {
            out.println(Hex.encode(apdu));
        }
        for (CardImage app : profile.applications) {
            for (byte[] apdu : PersoCommands.forPayment(app)) {
                out.println(Hex.encode(apdu));
            }
        }
    }

    static void serve(SimulatedCard card, String host, int port, boolean once,
                              BufferedWriter timing) throws IOException, InterruptedException {
        long backoff = 10;
        while (true) {
            VpcdLink link;
            try {
                link = VpcdLink.connect(host, port, 2000);
            } catch (IOException e) {
                Thread.sleep(backoff); // retry backoff while vpcd is not listening yet
                backoff = Math.min(backoff * 2, 1000);
                continue;
            }
            backoff = 10;
            System.out.println("CONNECTED " + host + ":" + port);
            System.out.flush();
            try {
                session(card, link, timing);
            } catch (IOException e) {
                System.out.println("DISCONNECTED " + e.getMessage());
                System.out.flush();
            } finally {
                link.close();
                if (timing != null) {
                    timing.flush();
                }
            }
            if (once) {
                return;
            }
        }
    }

    private static void session(SimulatedCard card, VpcdLink link, BufferedWriter timing) throws IOException {
        while (true) {
            byte[] msg = link.receive();
            if (msg.length == 1) {
                switch (msg[0]) {
                    case VpcdLink.CTRL_ON:
                    case VpcdLink.CTRL_RESET:
                    case VpcdLink.CTRL_OFF:
                        card.reset(); // every PC/SC connect powers on again: a fresh session
                        if (timing != null) {
                            timing.flush();
                        }
                        break;
                    case VpcdLink.CTRL_ATR:
                        link.send(card.atr());
                        break;
                    default:
                        break; // unknown control codes have no answer in vpcd
                }
                continue;
            }
            long t0 = System.nanoTime();
            byte[] response = card.transmit(msg);
            long ns = System.nanoTime() - t0;
            link.send(response);
            if (timing != null) {
                timing.write(String.format("%02X\t%d\t%s\t%d\t%d%n", msg[1] & 0xFF, ns,
                        Hex.encode(response, response.length - 2, 2), msg.length, response.length));
            }
        }
    }
}
