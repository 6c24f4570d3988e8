package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.math.BigInteger;
import java.security.interfaces.RSAPrivateCrtKey;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * SELECT and GET PROCESSING OPTIONS on the qPBOC quick path (C-7; JR/T 0025.12 qPBOC; docs/emv-notes.md, Kernel 7 / qPBOC):
 * the card decides TC / ARQC / AAC in GPO and answers in template 77.
 */
class QuickPathTest {

    static final String UN = "1E78EEBC";

    private static int atcOf(List<Host.Tlv> tlvs) {
        byte[] a = Host.value(tlvs, 0x9F36);
        return ((a[0] & 0xFF) << 8) | (a[1] & 0xFF);
    }

    @Test
    void selectReturnsTheFciFromPersonalisation() throws Exception {
        assertArrayEquals(TestCard.FCI, TestCard.personalised().selectPayment());
    }

    @Test
    void onlineCryptogramRequiredGivesArqcInTemplate77WithTheQpbocDataObjects() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN);
        byte[] r = t.ok(TestCard.gpo(pdol));
        assertEquals(0x77, r[0] & 0xFF);
        List<Host.Tlv> tlvs = Host.inside(r);
        assertArrayEquals(new int[] {0x82, 0x94, 0x9F36, 0x9F26, 0x9F27, 0x9F10, 0x57, 0x5F34, 0x9F6C},
                Host.tags(tlvs));
        assertArrayEquals(TestCard.AIP, Host.value(tlvs, 0x82));
        assertArrayEquals(TestCard.AFL, Host.value(tlvs, 0x94));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27));
        assertArrayEquals(TestCard.TRACK2, Host.value(tlvs, 0x57));
        assertArrayEquals(Host.hex("01"), Host.value(tlvs, 0x5F34));
        assertArrayEquals(TestCard.CTQ, Host.value(tlvs, 0x9F6C));
    }

    @Test
    void iadIsPbocCvn01WithCvrReportingArqcNoSecondGenerateAcAndNewCard() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        byte[] r = t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN)));
        assertArrayEquals(Host.hex("0701010" + "3A0100001"), Host.value(Host.inside(r), 0x9F10), "new card");
    }

    @Test
    void arqcIsThePbocMacUnderTheSessionKeyDerivedOnCardFromTheMasterKey() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000001234", UN);
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(pdol)));
        byte[] cvr = Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7);
        assertArrayEquals(TestCard.expectedAc(pdol, atcOf(tlvs), cvr), Host.value(tlvs, 0x9F26));
    }

    @Test
    void amountWithinTheOfflineLimitGivesTcWithAnFddaSignatureTheTerminalCanVerify() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000500", UN);
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(pdol)));
        assertArrayEquals(new byte[] {0x40}, Host.value(tlvs, 0x9F27));
        assertArrayEquals(new int[] {0x82, 0x94, 0x9F36, 0x9F26, 0x9F27, 0x9F10, 0x57, 0x5F34, 0x9F6C, 0x9F4B},
                Host.tags(tlvs));
        byte[] cvr = Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7);
        assertArrayEquals(Host.hex("03901002"), cvr, "TC, new card, offline DDA performed");
        assertArrayEquals(TestCard.expectedAc(pdol, atcOf(tlvs), cvr), Host.value(tlvs, 0x9F26));

        // READ RECORD of the last AFL record gives 9F69 = version ‖ card UN ‖ CTQ
        byte[] rec = t.ok("00B2021400");
        byte[] cad = Host.value(Host.inside(rec), 0x9F69);
        assertEquals(0x01, cad[0]);
        assertArrayEquals(TestCard.CTQ, Arrays.copyOfRange(cad, 5, 7));

        RSAPrivateCrtKey k = TestCard.key(1024);
        byte[] sdad = Host.recover(Host.value(tlvs, 0x9F4B), k.getModulus(), BigInteger.valueOf(3));
        assertEquals(0x6A, sdad[0] & 0xFF);
        assertEquals(0x05, sdad[1]);
        assertEquals(0xBC, sdad[sdad.length - 1] & 0xFF);
        int ldd = sdad[3] & 0xFF;
        byte[] dd = Arrays.copyOfRange(sdad, 4, 4 + ldd);
        assertArrayEquals(Host.cat(new byte[] {2}, Host.value(tlvs, 0x9F36)), dd, "IDN = ATC");
        byte[] hashed = Arrays.copyOfRange(sdad, 1, sdad.length - 21);
        byte[] terminal = Host.cat(Host.hex(UN), Host.hex("000000000500"), Host.hex("0156"), cad);
        assertArrayEquals(Host.sha1(hashed, terminal), Arrays.copyOfRange(sdad, sdad.length - 21, sdad.length - 1));
    }

    @Test
    void amountAboveTheOfflineLimitGoesOnline() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000010001", UN))));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27));
        assertNull(Host.value(tlvs, 0x9F4B));
    }

    @Test
    void onlineDecisionOnAnOfflineOnlyReaderIsADecline() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_OFFLINE_ONLY, "000000010001", UN);
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(pdol)));
        assertArrayEquals(new byte[] {0x00}, Host.value(tlvs, 0x9F27));
        byte[] cvr = Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7);
        assertArrayEquals(Host.hex("03801000"), cvr, "AAC, new card (the amount is no velocity counter)");
        assertArrayEquals(TestCard.expectedAc(pdol, atcOf(tlvs), cvr), Host.value(tlvs, 0x9F26));
    }

    @Test
    void consecutiveOfflineLimitReachedGoesOnline() throws Exception {
        TestCard t = TestCard.personalised();
        String pdol = TestCard.gpo(TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", UN));
        for (int i = 0; i < 3; i++) {
            t.card.reset();
            t.selectPayment();
            assertArrayEquals(new byte[] {0x40}, Host.value(Host.inside(t.ok(pdol)), 0x9F27));
        }
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> online = Host.inside(t.ok(pdol));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(online, 0x9F27));
        assertArrayEquals(Host.hex("03A03000"), Arrays.copyOfRange(Host.value(online, 0x9F10), 3, 7),
                "velocity checking counters exceeded (and still a new card)");
        t.card.reset();
        t.selectPayment();
        assertArrayEquals(new byte[] {0x40}, Host.value(Host.inside(t.ok(pdol)), 0x9F27),
                "an online cryptogram resets the consecutive offline count");
    }

    @Test
    void withoutAnIccKeyATcCarriesNoSignature() throws Exception {
        // as the HCE card does: the decision is the card's risk management, fDDA follows if it can
        TestCard t = new TestCard(TestCard.image(0), true);
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", UN))));
        assertArrayEquals(new byte[] {0x40}, Host.value(tlvs, 0x9F27));
        assertNull(Host.value(tlvs, 0x9F4B));
        assertArrayEquals(Host.hex("03901000"), Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7));
    }

    @Test
    void cvmRequiredWithOnlinePinGoesOnlineAndAsksForOnlinePinInTheCtq() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData("26400080", "000000000100", UN))));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27));
        assertArrayEquals(Host.hex("8080"), Host.value(tlvs, 0x9F6C));
    }

    @Test
    void cvmRequiredWithSignatureOnlyKeepsTheOfflineDecisionAndAsksForASignature() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData("22400080", "000000000100", UN))));
        assertArrayEquals(new byte[] {0x40}, Host.value(tlvs, 0x9F27));
        assertArrayEquals(Host.hex("4080"), Host.value(tlvs, 0x9F6C));
        byte[] cad = Host.value(Host.inside(t.ok("00B2021400")), 0x9F69);
        assertArrayEquals(Host.hex("4080"), Arrays.copyOfRange(cad, 5, 7), "9F69 carries the CTQ returned");
    }

    @Test
    void cvmRequiredWithNoCvmInCommonIsADecline() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData("20400080", "000000000100", UN))));
        assertArrayEquals(new byte[] {0x00}, Host.value(tlvs, 0x9F27));
    }

    @Test
    void anotherCurrencyThanTheCardsGoesOnline() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", UN)
                .replace("0000000000" + "0156", "0000000000" + "0840");
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(pdol)));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27));
    }

    @Test
    void readerWithoutQpbocGetsTheFullPathAipAndAflOnly() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        byte[] r = t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_FULL_PATH, "000000000100", UN)));
        List<Host.Tlv> tlvs = Host.inside(r);
        assertArrayEquals(new int[] {0x82, 0x94}, Host.tags(tlvs));
        assertNotNull(Host.value(tlvs, 0x94));
    }

    @Test
    void pdolDataOfTheWrongLengthGives6700() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN);
        assertEquals(0x6700, TestCard.sw(t.send(TestCard.gpo(pdol + "00"))));
        assertEquals(0x6700, TestCard.sw(t.send(TestCard.gpo(pdol.substring(2)))));
        assertEquals(0x6700, TestCard.sw(t.send("80A80000028300")));
        assertEquals(0x6700, TestCard.sw(t.send("80A8000000")));
    }

    @Test
    void gpoDataThatIsNotOneTemplate83Gives6A80() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN);
        assertEquals(0x6A80, TestCard.sw(t.send("80A8000023" + "84" + "21" + pdol + "00")));
        assertEquals(0x6A80, TestCard.sw(t.send("80A8000024" + "83" + "21" + pdol + "0000")));
    }

    @Test
    void gpoWithNonZeroP1P2Gives6A86() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String apdu = TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN));
        assertEquals(0x6A86, TestCard.sw(t.send("80A80100" + apdu.substring(8))));
    }

    @Test
    void secondGpoInOneSelectionGives6985() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        String apdu = TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN));
        t.ok(apdu);
        assertEquals(0x6985, TestCard.sw(t.send(apdu)));
    }

    @Test
    void gpoWithWrongClassGives6E00AndUnknownInstruction6D00() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6E00, TestCard.sw(t.send("00A8000002830000")));
        assertEquals(0x6D00, TestCard.sw(t.send("80FF000000")));
    }

    @Test
    void largeIccKeyResponseIsChainedWith61xxAndGetResponse() throws Exception {
        TestCard t = new TestCard(TestCard.image(1984), true);
        t.selectPayment();
        String pdol = TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", UN);
        byte[] first = t.send(TestCard.gpo(pdol));
        assertEquals(0x61, first[first.length - 2] & 0xFF);
        assertEquals(256, first.length - 2);
        byte[] rest = t.send(String.format("00C00000%02X", first[first.length - 1] & 0xFF));
        assertEquals(0x9000, TestCard.sw(rest));
        byte[] whole = Host.cat(TestCard.data(first), TestCard.data(rest));
        List<Host.Tlv> tlvs = Host.inside(whole);
        assertEquals(248, Host.value(tlvs, 0x9F4B).length);
        assertEquals(0x6985, TestCard.sw(t.send("00C0000000")), "nothing left to get");
    }
}
