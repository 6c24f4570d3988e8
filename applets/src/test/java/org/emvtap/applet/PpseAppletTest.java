package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.emvtap.bridge.PersoCommands;
import org.junit.jupiter.api.Test;

/** PPSE "2PAY.SYS.DDF01" (Book B, 3.3) and its personalisation. */
class PpseAppletTest {

    static final String SELECT_PPSE = "00A404000E325041592E5359532E444446303100";

    @Test
    void selectPpseReturnsTheFciStoredAtPersonalisation() throws Exception {
        TestCard t = TestCard.personalised();
        assertArrayEquals(TestCard.PPSE_FCI, t.ok(SELECT_PPSE));
    }

    @Test
    void selectBeforePersonalisationAnswers9000WithoutFci() throws Exception {
        TestCard t = new TestCard(TestCard.image(1024), false);
        assertEquals(0, t.ok(SELECT_PPSE).length);
    }

    @Test
    void storeDataIsRefusedWith6985AfterEndOfPersonalisation() throws Exception {
        TestCard t = TestCard.personalised();
        t.ok(SELECT_PPSE);
        byte[] again = PersoCommands.forPpse(TestCard.PPSE_FCI).get(1);
        assertEquals(0x6985, TestCard.sw(t.send(again)));
    }

    @Test
    void endOfPersonalisationWithoutFciGives6A88() throws Exception {
        TestCard t = new TestCard(TestCard.image(1024), false);
        t.ok(SELECT_PPSE);
        assertEquals(0x6A88, TestCard.sw(t.send("80E2880000")));
    }

    @Test
    void otherDgiThanFciIsRejectedWith6A80() throws Exception {
        TestCard t = new TestCard(TestCard.image(1024), false);
        t.ok(SELECT_PPSE);
        assertEquals(0x6A80, TestCard.sw(t.send("80E2080003910100")));
    }

    @Test
    void selectNextOccurrenceIsNotAnswered9000() throws Exception {
        // the runtime (jcardsim: 6986; a GlobalPlatform card manager: 6A82) answers it, not the applet
        TestCard t = TestCard.personalised();
        assertNotEquals(0x9000, TestCard.sw(t.send("00A404020E325041592E5359532E444446303100")));
    }

    @Test
    void unknownInstructionGives6D00AndWrongClassGives6E00() throws Exception {
        TestCard t = TestCard.personalised();
        t.ok(SELECT_PPSE);
        assertEquals(0x6D00, TestCard.sw(t.send("80A8000002830000")));
        assertEquals(0x6E00, TestCard.sw(t.send("00E2880003910100")));
    }
}
