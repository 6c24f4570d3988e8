package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.spec.RSAKeyGenParameterSpec;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.emvtap.bridge.CardImage;
import org.emvtap.bridge.PersoCommands;
import org.emvtap.bridge.ProfileReader;
import org.emvtap.bridge.SimulatedCard;

/**
 * A personalised test card on jcardsim: the PPSE and one UnionPay debit application with a
 * known AC master key (the public PBOC vector's ICC MK), an ICC RSA key made once per test run.
 */
final class TestCard {

    static final byte[] AID = Host.hex("A000000333010101");
    static final byte[] MK_AC = Host.hex("014C986ECD8F49157CC8B59E3BCDFD98");
    static final byte[] MK_SMI = Host.hex("404142434445464748494A4B4C4D4E4F");
    static final byte[] MK_SMC = Host.hex("505152535455565758595A5B5C5D5E5F");
    static final String PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704";
    static final String CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F3704";
    static final String CDOL2 = "910A8A0295059F3704";
    static final byte[] AIP = Host.hex("7D00");
    static final byte[] AFL = Host.hex("0801010110010200");
    static final byte[] CTQ = Host.hex("0080");
    static final byte[] TRACK2 = Host.hex("6234567890123456D30122010000000F");
    static final byte[] PPSE_FCI = tlv(0x6F, Host.cat(tlv(0x84, Host.hex("325041592E5359532E4444463031")),
            tlv(0xA5, tlv(0xBF0C, tlv(0x61, Host.cat(tlv(0x4F, AID), tlv(0x87, Host.hex("01"))))))));
    static final byte[] FCI = tlv(0x6F, Host.cat(tlv(0x84, AID), tlv(0xA5, Host.cat(
            tlv(0x50, "UnionPay Debit".getBytes(java.nio.charset.StandardCharsets.US_ASCII)),
            tlv(0x87, Host.hex("01")), tlv(0x9F38, Host.hex(PDOL))))));
    static final byte[] RECORD_1_1 = tlv(0x70, Host.cat(tlv(0x5A, Host.hex("6234567890123456")),
            tlv(0x5F24, Host.hex("301231")), tlv(0x5F28, Host.hex("0156"))));
    /** A record past one STORE DATA block (a certificate-sized 9F46), to cross block limits. */
    static final byte[] RECORD_2_1 = tlv(0x70, tlv(0x9F46, filled(248, 0x5A)));
    /** The last record in the AFL carries 9F69, filled in per transaction. */
    static final byte[] RECORD_2_2 = tlv(0x70, Host.cat(tlv(0x9F69, new byte[7]), tlv(0x5F34, Host.hex("01"))));

    static byte[] filled(int n, int b) {
        byte[] out = new byte[n];
        Arrays.fill(out, (byte) b);
        return out;
    }

    static byte[] tlv(int tag, byte[] value) {
        byte[] t = tag > 0xFF ? new byte[] {(byte) (tag >> 8), (byte) tag} : new byte[] {(byte) tag};
        byte[] l = value.length < 0x80 ? new byte[] {(byte) value.length}
                : new byte[] {(byte) 0x81, (byte) value.length};
        return Host.cat(t, l, value);
    }

    private static final Map<Integer, KeyPair> KEYS = new HashMap<>();

    static synchronized KeyPair rsa(int bits) throws Exception {
        KeyPair kp = KEYS.get(bits);
        if (kp == null) {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
            g.initialize(new RSAKeyGenParameterSpec(bits, BigInteger.valueOf(3)));
            kp = g.generateKeyPair();
            KEYS.put(bits, kp);
        }
        return kp;
    }

    static CardImage image(int rsaBits) throws Exception {
        CardImage c = new CardImage();
        c.aid = AID;
        c.fci = FCI;
        c.aip = AIP;
        c.afl = AFL;
        c.pdol = Host.hex(PDOL);
        c.cdol1 = Host.hex(CDOL1);
        c.cdol2 = Host.hex(CDOL2);
        c.ddol = Host.hex("9F3704");
        c.track2 = TRACK2;
        c.psn = Host.hex("01");
        c.ctq = CTQ;
        c.dki = 1;
        c.cvn = 1;
        c.fddaVersion = 1;
        c.offlineAmountLimit = 10000;
        c.consecutiveOfflineLimit = 3;
        c.allowOffline = true;
        c.getData.put(0x9F4F, Host.hex("9A039F21035F2A029F02069F4E149C019F3602"));
        c.getData.put(0x9F17, Host.hex("03"));
        c.records.add(new CardImage.Record(1, 1, RECORD_1_1));
        c.records.add(new CardImage.Record(2, 1, RECORD_2_1));
        c.records.add(new CardImage.Record(2, 2, RECORD_2_2));
        c.masterKeys = Host.cat(MK_AC, MK_SMI, MK_SMC);
        if (rsaBits > 0) {
            RSAPrivateCrtKey k = (RSAPrivateCrtKey) rsa(rsaBits).getPrivate();
            c.rsa = ProfileReader.crt(k.getModulus(), k.getPrivateExponent(), k.getPrimeP(), k.getPrimeQ());
        }
        return c;
    }

    static RSAPrivateCrtKey key(int bits) throws Exception {
        return (RSAPrivateCrtKey) rsa(bits).getPrivate();
    }

    final SimulatedCard card = new SimulatedCard();
    final CardImage image;

    TestCard(CardImage image, boolean personalise) {
        this.image = image;
        card.installPpse();
        card.installPayment(image.aid, image.modulusBytes());
        if (personalise) {
            card.run(PersoCommands.forPpse(PPSE_FCI));
            card.run(PersoCommands.forPayment(image));
            card.reset();
        }
    }

    static TestCard personalised() throws Exception {
        return new TestCard(image(1024), true);
    }

    /** Sends a hex APDU, returns data ‖ SW. */
    byte[] send(String apdu) {
        return card.transmit(Host.hex(apdu));
    }

    byte[] send(byte[] apdu) {
        return card.transmit(apdu);
    }

    static int sw(byte[] r) {
        return ((r[r.length - 2] & 0xFF) << 8) | (r[r.length - 1] & 0xFF);
    }

    static byte[] data(byte[] r) {
        return Arrays.copyOf(r, r.length - 2);
    }

    /** Sends and asserts 9000, returns the data. */
    byte[] ok(String apdu) {
        byte[] r = send(apdu);
        assertEquals(0x9000, sw(r), () -> "SW for " + apdu);
        return data(r);
    }

    byte[] selectPayment() {
        byte[] r = card.transmit(PersoCommands.select(image.aid));
        assertEquals(0x9000, sw(r));
        return data(r);
    }

    // ------------------------------------------------------------ transaction helpers

    static final String TTQ_QPBOC_ONLINE_CAPABLE = "26000080"; // qPBOC, online PIN, signature, fDDA 01
    static final String TTQ_ONLINE_REQUIRED = "26800080";
    static final String TTQ_OFFLINE_ONLY = "2E000080";
    static final String TTQ_FULL_PATH = "40000000"; // contactless full PBOC only

    /** PDOL data: TTQ ‖ 9F02 ‖ 9F03 ‖ 9F1A ‖ 95 ‖ 5F2A ‖ 9A ‖ 9C ‖ 9F37. */
    static String pdolData(String ttq, String amount, String un) {
        return ttq + amount + "000000000000" + "0156" + "0000000000" + "0156" + "261126" + "00" + un;
    }

    static String gpo(String pdolData) {
        int n = pdolData.length() / 2;
        return String.format("80A80000%02X83%02X%s00", n + 2, n, pdolData);
    }

    /** ARQC / TC / AAC recomputed by the host from the PDOL data, AIP, ATC and CVR. */
    static byte[] expectedAc(String pdolData, int atc, byte[] cvr) throws Exception {
        byte[] terminal = Host.hex(pdolData.substring(8)); // all after TTQ is the MAC data, in order
        byte[] input = Host.cat(terminal, AIP, new byte[] {(byte) (atc >> 8), (byte) atc}, cvr);
        return Host.retailMac(Host.pbocSessionKey(MK_AC, atc), input);
    }
}
