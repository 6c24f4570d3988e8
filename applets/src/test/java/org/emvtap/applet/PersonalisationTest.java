package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.emvtap.bridge.CardImage;
import org.emvtap.bridge.PersoCommands;
import org.junit.jupiter.api.Test;

/** STORE DATA personalisation (GlobalPlatform 11.11, EMV CPS DGIs; applets/README.md). */
class PersonalisationTest {

    private static TestCard fresh() throws Exception {
        TestCard t = new TestCard(TestCard.image(1024), false);
        t.selectPayment();
        return t;
    }

    @Test
    void dgiStreamSpanningSeveralStoreDataBlocksPersonalisesTheCard() throws Exception {
        List<byte[]> apdus = PersoCommands.forPayment(TestCard.image(1024));
        assertTrue(apdus.size() > 3, "the test perso must cross block boundaries");
        TestCard t = TestCard.personalised();
        assertArrayEquals(TestCard.FCI, t.selectPayment());
        assertArrayEquals(TestCard.RECORD_2_1, t.ok("00B2011400"));
    }

    @Test
    void storeDataIsRefusedWith6985AfterTheLastBlock() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6985, TestCard.sw(t.send("80E2880004B005020000")));
    }

    @Test
    void transactionCommandsBeforePersonalisationGive6985() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6985, TestCard.sw(t.send(TestCard.gpo(TestCard.pdolData(
                TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", "11223344")))));
        assertEquals(0x6985, TestCard.sw(t.send("00B2010C00")));
        assertEquals(0x6985, TestCard.sw(t.send("80CA9F3600")));
    }

    @Test
    void blockOutOfSequenceGives6A86() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A86, TestCard.sw(t.send("80E2080103B0050200")));
    }

    @Test
    void encryptedOrTlvFormattedStoreDataGives6A86() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A86, TestCard.sw(t.send("80E2680005B005020000")));
        assertEquals(0x6A86, TestCard.sw(t.send("80E2100005B005020000")));
    }

    @Test
    void lastBlockWithoutMandatoryDataGives6A88AndTheCardStaysPersonalisable() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A88, TestCard.sw(t.send("80E2880005B005020000")));
        // still in the personalisation state: a complete perso (new selection, block 0) goes through
        t.card.run(PersoCommands.forPayment(t.image));
        t.selectPayment();
        assertEquals(0x9000, TestCard.sw(t.send("80CA9F3600")));
    }

    @Test
    void recordDgiThatIsNotTemplate70Gives6A80() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A80, TestCard.sw(t.send("80E208000601010361015A")));
    }

    @Test
    void rsaComponentOfWrongLengthGives6A80() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A80, TestCard.sw(t.send("80E2080005820502AABB")));
    }

    @Test
    void unknownDgiGives6A88() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A88, TestCard.sw(t.send("80E2080004C0010100")));
    }

    @Test
    void onlyCvn01IsAccepted() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6A80, TestCard.sw(t.send("80E2080007B00204DF110102")));
    }

    @Test
    void lastBlockEndingInsideADgiGives6700() throws Exception {
        TestCard t = fresh();
        assertEquals(0x6700, TestCard.sw(t.send("80E2880004B0050200")));
    }

    @Test
    void installParametersSetTheIccKeyLength() throws Exception {
        CardImage img = TestCard.image(768);
        assertEquals(96, img.modulusBytes());
        TestCard t = new TestCard(img, true);
        t.selectPayment();
        t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_FULL_PATH, "000000000100", "CAFEBABE")));
        byte[] r = t.ok("0088000004CAFEBABE00");
        assertEquals(96, Host.header(r, 0)[1]);
    }
}
