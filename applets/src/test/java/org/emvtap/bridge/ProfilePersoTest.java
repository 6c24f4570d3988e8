package org.emvtap.bridge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A profile written by {@code emvtap perso --seed 7} (test keys) personalises the applets, which
 * then serve its FCIs and records byte-identical.
 */
class ProfilePersoTest {

    static ProfileReader profile() throws Exception {
        return ProfileReader.load(Paths.get(ProfilePersoTest.class.getResource("/profile-seed7.json").toURI()));
    }

    static byte[] data(byte[] r) {
        assertEquals(0x9000, ((r[r.length - 2] & 0xFF) << 8) | (r[r.length - 1] & 0xFF));
        return Arrays.copyOf(r, r.length - 2);
    }

    @Test
    void profilePersonalisesPpseAndPaymentApplets() throws Exception {
        ProfileReader p = profile();
        SimulatedCard card = new SimulatedCard();
        card.installAndPersonalise(p);
        assertArrayEquals(p.ppseFci, data(card.transmit(PersoCommands.select(PersoCommands.PPSE_AID))));
        CardImage app = p.applications.get(0);
        assertArrayEquals(app.fci, data(card.transmit(PersoCommands.select(app.aid))));
        for (CardImage.Record r : app.records) {
            byte[] rr = data(card.transmit(new byte[] {0, (byte) 0xB2, (byte) r.number, (byte) ((r.sfi << 3) | 4), 0}));
            assertArrayEquals(r.data, rr, "record " + r.sfi + "/" + r.number);
        }
    }

    @Test
    void profileKeyLengthBecomesTheInstallParameter() throws Exception {
        CardImage app = profile().applications.get(0);
        assertEquals(app.rsa.p.length * 2, app.modulusBytes());
        assertArrayEquals(new byte[] {(byte) 0xC9, 2, 0, (byte) app.modulusBytes()},
                PersoCommands.installParameters(app.modulusBytes()));
    }

    @Test
    void storeDataBlocksAreAtMost255BytesNumberedAndTheLastIsFlagged() throws Exception {
        List<byte[]> apdus = PersoCommands.forPayment(profile().applications.get(0));
        for (int i = 1; i < apdus.size(); i++) {
            byte[] a = apdus.get(i);
            assertEquals((byte) 0xE2, a[1]);
            assertEquals(i - 1, a[3] & 0xFF);
            assertEquals(i == apdus.size() - 1 ? (byte) 0x88 : (byte) 0x08, a[2]);
            assertTrue((a[4] & 0xFF) <= 255 && a.length == 5 + (a[4] & 0xFF));
        }
    }

    @Test
    void aFileThatIsNotACardProfileIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> ProfileReader.parse("{\"format\": \"x\"}"));
        assertThrows(IllegalArgumentException.class, () -> ProfileReader.parse("{\"format\": "));
    }
}
