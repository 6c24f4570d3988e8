package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** READ RECORD (Book 3, 6.5.11) and GET DATA (Book 3, 6.5.7). */
class ReadRecordAndGetDataTest {

    @Test
    void readRecordReturnsThePersonalisedRecordByteIdentical() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertArrayEquals(TestCard.RECORD_1_1, t.ok("00B2010C00"));
        assertArrayEquals(TestCard.RECORD_2_1, t.ok("00B2011400"));
    }

    @Test
    void cardAuthenticationDataBeforeAQuickPathGpoIsZeros() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        byte[] rec = t.ok("00B2021400");
        assertArrayEquals(new byte[7], Host.value(Host.inside(rec), 0x9F69));
    }

    @Test
    void missingRecordInAnExistingFileGives6A83() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6A83, TestCard.sw(t.send("00B2050C00")));
    }

    @Test
    void recordInAFileThatDoesNotExistGives6A82() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6A82, TestCard.sw(t.send("00B2011C00")));
    }

    @Test
    void readRecordWithRecordZeroOrAnotherP2FormGives6A86() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6A86, TestCard.sw(t.send("00B2000C00")));
        assertEquals(0x6A86, TestCard.sw(t.send("00B2010800")));
        assertEquals(0x6A86, TestCard.sw(t.send("00B2010400")));
    }

    @Test
    void readRecordOrGetDataWithCommandDataGives6700() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6700, TestCard.sw(t.send("00B2010C0100")));
        assertEquals(0x6700, TestCard.sw(t.send("80CA9F360100")));
    }

    @Test
    void readRecordWithProprietaryClassGives6E00() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6E00, TestCard.sw(t.send("80B2010C00")));
    }

    @Test
    void getDataAtcAndLastOnlineAtcRegister() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertArrayEquals(Host.hex("9F36020000"), t.ok("80CA9F3600"));
        assertArrayEquals(Host.hex("9F13020000"), t.ok("80CA9F1300"));
        t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304")));
        assertArrayEquals(Host.hex("9F36020001"), t.ok("80CA9F3600"));
        assertArrayEquals(Host.hex("9F13020001"), t.ok("80CA9F1300"));
    }

    @Test
    void getDataOfPersonalisedObjectsPinTryCounterAndLogFormat() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertArrayEquals(Host.hex("9F170103"), t.ok("80CA9F1700"));
        assertArrayEquals(Host.hex("9F4F139A039F21035F2A029F02069F4E149C019F3602"), t.ok("80CA9F4F00"));
    }

    @Test
    void getDataOfRiskDataObjects() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertArrayEquals(Host.hex("9F140103"), t.ok("80CA9F1400"));
        assertArrayEquals(Host.hex("9F51020156"), t.ok("80CA9F5100"));
        assertArrayEquals(Host.hex("DF7106000000010000"), t.ok("80CADF7100"));
    }

    @Test
    void getDataOfAnObjectTheCardDoesNotHoldGives6A88() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6A88, TestCard.sw(t.send("80CA9F7900")));
        assertEquals(0x6A88, TestCard.sw(t.send("80CA005700")), "track 2 is not GET DATA readable");
        assertEquals(0x6A88, TestCard.sw(t.send("80CA9F3800")), "nor is the PDOL");
    }
}
