package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** GENERATE AC on the full path (Book 3, 6.5.5; Book 2, 6.6 CDA; 8.2 issuer authentication). */
class GenerateAcTest {

    static final String UN = "CAFEBABE";
    /** CDOL1 data: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37. */
    static final String CDOL1_DATA = "000000002000" + "000000000000" + "0156" + "0000000000" + "0156" + "261126" + "00" + UN;
    static final String PDOL_DATA = TestCard.pdolData(TestCard.TTQ_FULL_PATH, "000000002000", UN);

    static TestCard afterFullPathGpo() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        t.ok(TestCard.gpo(PDOL_DATA));
        return t;
    }

    static String genAc(int p1, String data) {
        return String.format("80AE%02X00%02X%s00", p1, data.length() / 2, data);
    }

    /** Format 1 response {@code 80 L CID ‖ ATC ‖ AC ‖ IAD} as the TLVs it stands for. */
    static List<Host.Tlv> format1(byte[] r) {
        assertEquals(0x80, r[0] & 0xFF, "format 1");
        assertEquals(19, r[1]);
        List<Host.Tlv> out = new java.util.ArrayList<>();
        out.add(new Host.Tlv(0x9F27, Arrays.copyOfRange(r, 2, 3), null));
        out.add(new Host.Tlv(0x9F36, Arrays.copyOfRange(r, 3, 5), null));
        out.add(new Host.Tlv(0x9F26, Arrays.copyOfRange(r, 5, 13), null));
        out.add(new Host.Tlv(0x9F10, Arrays.copyOfRange(r, 13, 21), null));
        return out;
    }

    static int atc(List<Host.Tlv> tlvs) {
        byte[] a = Host.value(tlvs, 0x9F36);
        return ((a[0] & 0xFF) << 8) | (a[1] & 0xFF);
    }

    /** The MAC input from CDOL1-style data (the 8 terminal fields first, in order). */
    static byte[] expectedAc(String terminalData, int atc, byte[] cvr) throws Exception {
        byte[] input = Host.cat(Host.hex(terminalData), TestCard.AIP,
                new byte[] {(byte) (atc >> 8), (byte) atc}, cvr);
        return Host.retailMac(Host.pbocSessionKey(TestCard.MK_AC, atc), input);
    }

    @Test
    void firstGenerateAcAskedForArqcGivesArqcOverTheCdol1Data() throws Exception {
        TestCard t = afterFullPathGpo();
        List<Host.Tlv> tlvs = format1(t.ok(genAc(0x80, CDOL1_DATA)));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27));
        byte[] cvr = Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7);
        assertArrayEquals(Host.hex("03A01000"), cvr);
        assertArrayEquals(expectedAc(CDOL1_DATA, atc(tlvs), cvr), Host.value(tlvs, 0x9F26));
    }

    @Test
    void tcRequestWithinTheOfflineLimitGivesTcAndAacRequestGivesAac() throws Exception {
        TestCard t = afterFullPathGpo();
        assertArrayEquals(new byte[] {0x40}, Host.value(format1(t.ok(genAc(0x40, CDOL1_DATA))), 0x9F27));
        TestCard u = afterFullPathGpo();
        assertArrayEquals(new byte[] {0x00}, Host.value(format1(u.ok(genAc(0x00, CDOL1_DATA))), 0x9F27));
    }

    @Test
    void tcRequestAboveTheOfflineLimitIsTurnedIntoArqc() throws Exception {
        TestCard t = afterFullPathGpo();
        String big = "000000020000" + CDOL1_DATA.substring(12);
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(format1(t.ok(genAc(0x40, big))), 0x9F27));
    }

    @Test
    void cdaSignatureCarriesCidAcAndTheTransactionDataHashCode() throws Exception {
        TestCard t = afterFullPathGpo();
        byte[] r = t.ok(genAc(0x90, CDOL1_DATA));
        List<Host.Tlv> tlvs = Host.inside(r);
        assertArrayEquals(new int[] {0x9F27, 0x9F36, 0x9F4B, 0x9F10}, Host.tags(tlvs));
        assertNull(Host.value(tlvs, 0x9F26), "with CDA the AC is inside the signature only");
        byte[] sdad = Host.recover(Host.value(tlvs, 0x9F4B), TestCard.key(1024).getModulus(), BigInteger.valueOf(3));
        assertEquals(0x6A, sdad[0] & 0xFF);
        int ldd = sdad[3] & 0xFF;
        assertEquals(38, ldd);
        byte[] dd = Arrays.copyOfRange(sdad, 4, 4 + ldd);
        assertEquals(8, dd[0]);
        assertEquals((byte) 0x80, dd[9], "CID in the signature equals 9F27");
        byte[] ac = Arrays.copyOfRange(dd, 10, 18);
        byte[] cvr = Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7);
        assertArrayEquals(expectedAc(CDOL1_DATA, atc(tlvs), cvr), ac);
        byte[] tlvsBefore9F4B = Host.cat(tlvs.get(0).encoded, tlvs.get(1).encoded, tlvs.get(3).encoded);
        byte[] tdhc = Host.sha1(Host.hex(PDOL_DATA), Host.hex(CDOL1_DATA), tlvsBefore9F4B);
        assertArrayEquals(tdhc, Arrays.copyOfRange(dd, 18, 38));
        byte[] hashed = Arrays.copyOfRange(sdad, 1, sdad.length - 21);
        assertArrayEquals(Host.sha1(hashed, Host.hex(UN)), Arrays.copyOfRange(sdad, sdad.length - 21, sdad.length - 1));
    }

    @Test
    void secondGenerateAcGivesTcWhenTheArpcVerifies() throws Exception {
        TestCard t = afterFullPathGpo();
        List<Host.Tlv> first = format1(t.ok(genAc(0x80, CDOL1_DATA)));
        byte[] arqc = Host.value(first, 0x9F26);
        byte[] sk = Host.pbocSessionKey(TestCard.MK_AC, atc(first));
        byte[] arpc = Host.arpcMethod1(sk, arqc, Host.hex("3030"));
        String cdol2 = Host.hex(arpc) + "3030" + "3030" + "0000000000" + UN;
        List<Host.Tlv> second = format1(t.ok(genAc(0x40, cdol2)));
        assertArrayEquals(new byte[] {0x40}, Host.value(second, 0x9F27));
        byte[] cvr = Arrays.copyOfRange(Host.value(second, 0x9F10), 3, 7);
        assertArrayEquals(Host.hex("03601000"), cvr);
        // the TC covers the transaction's data (CDOL1) with what CDOL2 sent again (TVR, UN)
        String tvr = "0000000080";
        String cdol2WithTvr = Host.hex(arpc) + "3030" + "3030" + tvr + "11223344";
        TestCard u = afterFullPathGpo();
        List<Host.Tlv> f = format1(u.ok(genAc(0x80, CDOL1_DATA)));
        byte[] arpcU = Host.arpcMethod1(Host.pbocSessionKey(TestCard.MK_AC, atc(f)), Host.value(f, 0x9F26), Host.hex("3030"));
        cdol2WithTvr = Host.hex(arpcU) + cdol2WithTvr.substring(16);
        List<Host.Tlv> s2 = format1(u.ok(genAc(0x40, cdol2WithTvr)));
        String merged = CDOL1_DATA.substring(0, 12 + 12 + 4) + tvr + CDOL1_DATA.substring(38, 50) + "11223344";
        assertArrayEquals(expectedAc(merged, atc(s2), Arrays.copyOfRange(Host.value(s2, 0x9F10), 3, 7)),
                Host.value(s2, 0x9F26));
        assertEquals(0x6985, TestCard.sw(t.send(genAc(0x40, cdol2))), "no third GENERATE AC");
    }

    @Test
    void secondGenerateAcGivesAacWhenIssuerAuthenticationFails() throws Exception {
        TestCard t = afterFullPathGpo();
        t.ok(genAc(0x80, CDOL1_DATA));
        String cdol2 = "0102030405060708" + "3030" + "3030" + "0000000000" + UN;
        List<Host.Tlv> second = format1(t.ok(genAc(0x40, cdol2)));
        assertArrayEquals(new byte[] {0x00}, Host.value(second, 0x9F27));
        assertArrayEquals(Host.hex("03281000"), Arrays.copyOfRange(Host.value(second, 0x9F10), 3, 7));
        // and the next transaction reports it, and will not approve offline
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> next = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", UN))));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(next, 0x9F27));
        assertArrayEquals(Host.hex("03A01800"), Arrays.copyOfRange(Host.value(next, 0x9F10), 3, 7),
                "still a new card (no completed online transaction), issuer authentication failed");
    }

    @Test
    void generateAcWithoutFullPathGpoGives6985() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6985, TestCard.sw(t.send(genAc(0x80, CDOL1_DATA))));
        t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN)));
        assertEquals(0x6985, TestCard.sw(t.send(genAc(0x80, CDOL1_DATA))), "quick path already gave the AC");
    }

    @Test
    void cdolDataOfTheWrongLengthGives6700() throws Exception {
        TestCard t = afterFullPathGpo();
        assertEquals(0x6700, TestCard.sw(t.send(genAc(0x80, CDOL1_DATA + "00"))));
    }

    @Test
    void rfuCryptogramTypeOrNonZeroP2Gives6A86() throws Exception {
        TestCard t = afterFullPathGpo();
        assertEquals(0x6A86, TestCard.sw(t.send(genAc(0xC0, CDOL1_DATA))));
        assertEquals(0x6A86, TestCard.sw(t.send("80AE8001" + genAc(0x80, CDOL1_DATA).substring(8))));
    }

    @Test
    void internalAuthenticateSignsTheDdolDataWithAFreshIccDynamicNumber() throws Exception {
        TestCard t = afterFullPathGpo();
        byte[] r = t.ok("0088000004" + UN + "00");
        assertEquals(0x80, r[0] & 0xFF);
        byte[] sig = Arrays.copyOfRange(r, Host.header(r, 0)[0], r.length);
        byte[] sdad = Host.recover(sig, TestCard.key(1024).getModulus(), BigInteger.valueOf(3));
        assertEquals(0x05, sdad[1]);
        assertEquals(9, sdad[3]);
        assertEquals(8, sdad[4]);
        byte[] hashed = Arrays.copyOfRange(sdad, 1, sdad.length - 21);
        assertArrayEquals(Host.sha1(hashed, Host.hex(UN)), Arrays.copyOfRange(sdad, sdad.length - 21, sdad.length - 1));
        byte[] again = t.ok("0088000004" + UN + "00");
        byte[] sdad2 = Host.recover(Arrays.copyOfRange(again, 3, again.length),
                TestCard.key(1024).getModulus(), BigInteger.valueOf(3));
        assertNotEqualsIdn(sdad, sdad2);
    }

    private static void assertNotEqualsIdn(byte[] a, byte[] b) {
        assertEquals(false, Arrays.equals(Arrays.copyOfRange(a, 5, 13), Arrays.copyOfRange(b, 5, 13)),
                "each INTERNAL AUTHENTICATE has its own ICC dynamic number");
    }

    @Test
    void internalAuthenticateWithoutDataGives6700AndWithP1P2Gives6A86() throws Exception {
        TestCard t = afterFullPathGpo();
        assertEquals(0x6700, TestCard.sw(t.send("0088000000")));
        assertEquals(0x6700, TestCard.sw(t.send("008800005F" + Host.hex(new byte[95]) + "00")),
                "more DDOL data than a 1024-bit signature holds with its 8-byte IDN");
        assertEquals(0x6A86, TestCard.sw(t.send("0088010004" + UN + "00")));
    }

    @Test
    void internalAuthenticateOnlyBetweenAFullPathGpoAndTheFirstGenerateAc() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6985, TestCard.sw(t.send("0088000004" + UN + "00")), "before GPO");
        TestCard u = afterFullPathGpo();
        u.ok(genAc(0x80, CDOL1_DATA));
        assertEquals(0x6985, TestCard.sw(u.send("0088000004" + UN + "00")), "after GENERATE AC");
    }

    @Test
    void ddaIsReportedInTheCvrOfTheFollowingCryptogram() throws Exception {
        TestCard t = afterFullPathGpo();
        t.ok("0088000004" + UN + "00");
        List<Host.Tlv> tlvs = format1(t.ok(genAc(0x80, CDOL1_DATA)));
        assertArrayEquals(Host.hex("03A01002"), Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7));
    }

    @Test
    void anApplicationWithoutAnIccKeyDoesNotImplementInternalAuthenticate() throws Exception {
        TestCard t = new TestCard(TestCard.image(0), true);
        t.selectPayment();
        assertEquals(0x6D00, TestCard.sw(t.send("0088000004" + UN + "00")));
    }

    @Test
    void cdaWithoutAnIccKeyGives6A86() throws Exception {
        TestCard t = new TestCard(TestCard.image(0), true);
        t.selectPayment();
        t.ok(TestCard.gpo(PDOL_DATA));
        assertEquals(0x6A86, TestCard.sw(t.send(genAc(0x90, CDOL1_DATA))));
    }

    @Test
    void secondGenerateAcAskingForArqcGives6A86AndAfterAFirstTcGives6985() throws Exception {
        TestCard t = afterFullPathGpo();
        t.ok(genAc(0x80, CDOL1_DATA));
        String cdol2 = "0000000000000000" + "3030" + "3030" + "0000000000" + UN;
        assertEquals(0x6A86, TestCard.sw(t.send(genAc(0x80, cdol2))));
        TestCard u = afterFullPathGpo();
        u.ok(genAc(0x40, CDOL1_DATA));
        assertEquals(0x6985, TestCard.sw(u.send(genAc(0x40, cdol2))), "a TC completes the transaction");
    }

    @Test
    void secondGenerateAcWithoutIssuerAuthenticationIsAnAacAndReportedNextTime() throws Exception {
        TestCard t = afterFullPathGpo();
        t.ok(genAc(0x80, CDOL1_DATA));
        String cdol2 = "00000000000000000000" + "3030" + "0000000000" + UN;
        List<Host.Tlv> second = format1(t.ok(genAc(0x40, cdol2)));
        assertArrayEquals(new byte[] {0x00}, Host.value(second, 0x9F27));
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> next = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", UN))));
        assertArrayEquals(Host.hex("03A00400"), Arrays.copyOfRange(Host.value(next, 0x9F10), 3, 7),
                "issuer authentication not performed after online authorisation");
    }

    @Test
    void secondGenerateAcUnableToGoOnlineApprovesWithinTheCardsLimits() throws Exception {
        TestCard t = afterFullPathGpo();
        t.ok(genAc(0x80, CDOL1_DATA));
        String cdol2 = "00000000000000000000" + "5933" + "0000000000" + UN;
        List<Host.Tlv> second = format1(t.ok(genAc(0x40, cdol2)));
        assertArrayEquals(new byte[] {0x40}, Host.value(second, 0x9F27));
        assertArrayEquals(Host.hex("03611000"), Arrays.copyOfRange(Host.value(second, 0x9F10), 3, 7),
                "TC in the 2nd, ARQC in the 1st, unable to go online, new card");
    }

    @Test
    void externalAuthenticateBeforeTheSecondGenerateAcStandsForIssuerAuthentication() throws Exception {
        TestCard t = afterFullPathGpo();
        List<Host.Tlv> first = format1(t.ok(genAc(0x80, CDOL1_DATA)));
        byte[] sk = Host.pbocSessionKey(TestCard.MK_AC, atc(first));
        byte[] arpc = Host.arpcMethod1(sk, Host.value(first, 0x9F26), Host.hex("3030"));
        t.ok("008200000A" + Host.hex(arpc) + "3030");
        String cdol2 = "00000000000000000000" + "3030" + "0000000000" + UN;
        assertArrayEquals(new byte[] {0x40}, Host.value(format1(t.ok(genAc(0x40, cdol2))), 0x9F27));
    }
}
