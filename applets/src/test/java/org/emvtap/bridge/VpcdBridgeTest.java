package org.emvtap.bridge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The vpcd side of the bridge against a stand-in vpcd server: the card connects (retrying until
 * the server listens), answers the ATR request and APDUs in 2-byte-length frames, resets on power
 * on, and connects again after the server dropped it.
 */
class VpcdBridgeTest {

    private static byte[] exchange(DataOutputStream out, DataInputStream in, byte[] msg) throws Exception {
        out.writeShort(msg.length);
        out.write(msg);
        out.flush();
        byte[] r = new byte[in.readUnsignedShort()];
        in.readFully(r);
        return r;
    }

    private static void control(DataOutputStream out, int code) throws Exception {
        out.writeShort(1);
        out.write(code);
        out.flush();
    }

    @Test
    void cardAnswersAtrAndApdusInVpcdFramesAndReconnectsAfterTheServerDropsIt() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            int port;
            try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                port = probe.getLocalPort();
            }
            SimulatedCard card = new SimulatedCard();
            card.installAndPersonalise(ProfileReader.load(
                    java.nio.file.Paths.get(getClass().getResource("/profile-seed7.json").toURI())));
            final int p = port;
            // the card starts first and retries while nothing listens (vpcd not up yet)
            Thread bridge = new Thread(() -> {
                try {
                    VpcdBridge.serve(card, "127.0.0.1", p, false, null);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            bridge.setDaemon(true);
            bridge.start();
            try (ServerSocket server = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                for (int round = 0; round < 2; round++) {
                    try (Socket s = server.accept()) {
                        DataOutputStream out = new DataOutputStream(s.getOutputStream());
                        DataInputStream in = new DataInputStream(s.getInputStream());
                        control(out, VpcdLink.CTRL_ON);
                        out.writeShort(1);
                        out.write(VpcdLink.CTRL_ATR);
                        out.flush();
                        byte[] atr = new byte[in.readUnsignedShort()];
                        in.readFully(atr);
                        assertArrayEquals(SimulatedCard.DEFAULT_ATR, atr);
                        byte[] r = exchange(out, in, PersoCommands.select(PersoCommands.PPSE_AID));
                        assertEquals((byte) 0x6F, r[0]);
                        assertArrayEquals(new byte[] {(byte) 0x90, 0x00}, Arrays.copyOfRange(r, r.length - 2, r.length));
                    }
                }
            }
        });
    }
}
