package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Issuer script commands with secure messaging (Book 3, 6.5.1 APPLICATION BLOCK, 6.5.2 APPLICATION
 * UNBLOCK, PUT DATA; Book 2, 9.2.1 MAC over CLA INS P1 P2 Lc ‖ ATC ‖ AC ‖ data).
 */
class IssuerScriptTest {

    /** An online tap: returns {ATC (2), ARQC (8)} of the cryptogram the issuer saw. */
    static byte[] onlineTap(TestCard t) {
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304"))));
        return Host.cat(Host.value(tlvs, 0x9F36), Host.value(tlvs, 0x9F26));
    }

    /** The issuer's script command: header with Lc (MAC included), data, 4-byte MAC. */
    static byte[] scriptCommand(String header, byte[] data, byte[] atcAndAc, byte[] smiKey) throws Exception {
        int atc = ((atcAndAc[0] & 0xFF) << 8) | (atcAndAc[1] & 0xFF);
        byte[] hdr = Host.cat(Host.hex(header), new byte[] {(byte) (data.length + 4)});
        byte[] mac = Host.retailMac(Host.pbocSessionKey(smiKey, atc), Host.cat(hdr, atcAndAc, data));
        return Host.cat(hdr, data, Arrays.copyOf(mac, 4));
    }

    static byte[] block(byte[] online) throws Exception {
        return scriptCommand("841E0000", new byte[0], online, TestCard.MK_SMI);
    }

    /** The next tap, as the terminal delivers the script: SELECT, then the script command. */
    static int deliverOnNextTap(TestCard t, byte[] command) {
        t.card.reset();
        t.selectPayment();
        return TestCard.sw(t.send(command));
    }

    static String externalAuthenticate(byte[] online, String arc) throws Exception {
        int atc = ((online[0] & 0xFF) << 8) | (online[1] & 0xFF);
        byte[] arpc = Host.arpcMethod1(Host.pbocSessionKey(TestCard.MK_AC, atc),
                Arrays.copyOfRange(online, 2, 10), Host.hex(arc));
        return "008200000A" + Host.hex(arpc) + arc;
    }

    @Test
    void externalAuthenticateOnRePresentationVerifiesTheArpcOfTheLastArqc() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        t.card.reset();
        t.selectPayment();
        t.ok(externalAuthenticate(online, "3030"));
        assertEquals(0x6985, TestCard.sw(t.send(externalAuthenticate(online, "3030"))), "once per selection");
        assertEquals(0x9000, TestCard.sw(t.send(block(online))), "then the script");
    }

    @Test
    void externalAuthenticateWithAWrongArpcGives6300AndTheNextTapReportsIt() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        t.card.reset();
        t.selectPayment();
        String bad = externalAuthenticate(online, "3030").substring(0, 10) + "0000000000000000" + "3030";
        assertEquals(0x6300, TestCard.sw(t.send(bad)));
        List<Host.Tlv> tlvs = Host.inside(onlineTapResponse(t));
        assertArrayEquals(Host.hex("03A00800"), Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7),
                "issuer authentication failed last time");
    }

    @Test
    void externalAuthenticateWithoutAnOnlineCryptogramGives6985AndBadLengths6700() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        assertEquals(0x6985, TestCard.sw(t.send("008200000A0102030405060708" + "3030")));
        assertEquals(0x6700, TestCard.sw(t.send("00820000040102030405")));
        assertEquals(0x6A86, TestCard.sw(t.send("008201000A0102030405060708" + "3030")));
    }

    @Test
    void applicationBlockWithAValidMacBlocksTheApplication() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        assertEquals(0x9000, deliverOnNextTap(t, block(online)));
        t.card.reset();
        byte[] r = t.card.transmit(org.emvtap.bridge.PersoCommands.select(TestCard.AID));
        assertEquals(0x6283, TestCard.sw(r), "SELECT of a blocked application");
        assertArrayEquals(TestCard.FCI, TestCard.data(r), "the FCI still comes with 6283");
        assertEquals(0x6985, TestCard.sw(t.send(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304")))));
    }

    @Test
    void blockedApplicationStaysBlockedAcrossPowerCycles() throws Exception {
        TestCard t = TestCard.personalised();
        assertEquals(0x9000, deliverOnNextTap(t, block(onlineTap(t))));
        for (int i = 0; i < 2; i++) {
            t.card.reset();
            assertEquals(0x6283, TestCard.sw(t.card.transmit(org.emvtap.bridge.PersoCommands.select(TestCard.AID))));
        }
    }

    @Test
    void scriptWithAWrongMacGives6988AndChangesNothing() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        byte[] bad = scriptCommand("841E0000", new byte[0], online, TestCard.MK_AC); // wrong key
        assertEquals(0x6988, deliverOnNextTap(t, bad));
        byte[] flipped = block(online);
        flipped[flipped.length - 1] ^= 1;
        assertEquals(0x6988, TestCard.sw(t.send(flipped)));
        t.card.reset();
        assertEquals(0x9000, TestCard.sw(t.card.transmit(org.emvtap.bridge.PersoCommands.select(TestCard.AID))));
    }

    @Test
    void macOverADifferentAtcOrAcGives6988() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        byte[] otherAc = online.clone();
        otherAc[5] ^= 0x10;
        assertEquals(0x6988, deliverOnNextTap(t, block(otherAc)));
        byte[] otherAtc = online.clone();
        otherAtc[1] ^= 0x01;
        assertEquals(0x6988, deliverOnNextTap(t, block(otherAtc)));
    }

    @Test
    void scriptBeforeAnyOnlineCryptogramGives6988() throws Exception {
        TestCard t = TestCard.personalised();
        assertEquals(0x6988, deliverOnNextTap(t, block(Host.hex("00010000000000000000"))));
    }

    @Test
    void scriptForThePreviousOnlineCryptogramIsStillAccepted() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] first = onlineTap(t);
        onlineTap(t); // the terminal went online again before delivering the script
        assertEquals(0x9000, deliverOnNextTap(t, block(first)));
        t.card.reset();
        assertEquals(0x6283, TestCard.sw(t.card.transmit(org.emvtap.bridge.PersoCommands.select(TestCard.AID))));
    }

    @Test
    void applicationUnblockWithAValidMacUnblocks() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        assertEquals(0x9000, deliverOnNextTap(t, block(online)));
        t.card.reset();
        t.card.transmit(org.emvtap.bridge.PersoCommands.select(TestCard.AID));
        byte[] unblock = scriptCommand("84180000", new byte[0], online, TestCard.MK_SMI);
        assertEquals(0x9000, TestCard.sw(t.send(unblock)));
        t.card.reset();
        t.selectPayment();
        t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304")));
    }

    @Test
    void putDataWithAValidMacUpdatesARiskLimit() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        byte[] put = scriptCommand("04DA9F14", Host.hex("00"), online, TestCard.MK_SMI);
        assertEquals(0x9000, deliverOnNextTap(t, put));
        assertArrayEquals(Host.hex("9F140100"), t.ok("80CA9F1400"));
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_QPBOC_ONLINE_CAPABLE, "000000000100", "01020304"))));
        assertArrayEquals(new byte[] {(byte) 0x80}, Host.value(tlvs, 0x9F27), "no offline approvals left");
    }

    @Test
    void scriptResultsAreReportedInTheNextCvr() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        assertEquals(0x9000, deliverOnNextTap(t, scriptCommand("04DA9F17", Host.hex("03"), online, TestCard.MK_SMI)));
        byte[] bad = scriptCommand("04DA9F17", Host.hex("03"), online, TestCard.MK_AC);
        assertEquals(0x6988, TestCard.sw(t.send(bad)));
        t.card.reset();
        t.selectPayment();
        List<Host.Tlv> tlvs = Host.inside(t.ok(TestCard.gpo(
                TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304"))));
        assertArrayEquals(Host.hex("03A00028"), Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7),
                "two script commands, processing failed");
        tlvs = Host.inside(onlineTapResponse(t));
        assertArrayEquals(Host.hex("03A00000"), Arrays.copyOfRange(Host.value(tlvs, 0x9F10), 3, 7));
    }

    static byte[] onlineTapResponse(TestCard t) {
        t.card.reset();
        t.selectPayment();
        return t.ok(TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304")));
    }

    @Test
    void putDataUpdatesAGetDataObjectOfTheSameLength() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        assertEquals(0x9000, deliverOnNextTap(t, scriptCommand("84DA9F17", Host.hex("05"), online, TestCard.MK_SMI)));
        assertArrayEquals(Host.hex("9F170105"), t.ok("80CA9F1700"));
        assertEquals(0x6700, TestCard.sw(t.send(scriptCommand("04DA9F17", Host.hex("0505"), online, TestCard.MK_SMI))));
    }

    @Test
    void putDataOfAnObjectTheCardDoesNotHoldGives6A88() throws Exception {
        TestCard t = TestCard.personalised();
        byte[] online = onlineTap(t);
        assertEquals(0x6A88, deliverOnNextTap(t, scriptCommand("04DA9F79", Host.hex("000000001000"), online, TestCard.MK_SMI)));
        assertEquals(0x6A88, TestCard.sw(t.send(scriptCommand("04DA0057", Host.hex("00"), online, TestCard.MK_SMI))));
    }

    @Test
    void scriptCommandTooShortForAMacGives6700AndWrongClass6E00() throws Exception {
        TestCard t = TestCard.personalised();
        onlineTap(t);
        t.card.reset();
        t.selectPayment();
        assertEquals(0x6700, TestCard.sw(t.send("841E000002AABB")));
        assertEquals(0x6E00, TestCard.sw(t.send("801E000004AABBCCDD")));
        assertEquals(0x6A86, TestCard.sw(t.send("841E010004AABBCCDD")));
    }
}
