package org.emvtap.bridge;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The personalisation APDUs for the applets (applets/README.md, "Personalisation"): SELECT the
 * instance, then STORE DATA {@code 80 E2 P1 P2} blocks carrying a stream of DGIs (EMV CPS 1.1
 * framing: DGI ‖ length (1 byte up to FE, else FF ‖ 2 bytes) ‖ value), split in blocks of at most
 * 255 bytes; P1 = 08 (DGI format), 88 on the last block; P2 = block number.
 *
 * <p>lab/applet/perso.py builds the same bytes from the same profile (a pytest compares them).
 */
public final class PersoCommands {

    public static final byte[] PPSE_AID = "2PAY.SYS.DDF01".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    static final int BLOCK = 255;

    private PersoCommands() {
    }

    /** SELECT by DF name, first occurrence (Book 1, 11.3.2). */
    public static byte[] select(byte[] aid) {
        byte[] apdu = new byte[6 + aid.length];
        apdu[1] = (byte) 0xA4;
        apdu[2] = 0x04;
        apdu[4] = (byte) aid.length;
        System.arraycopy(aid, 0, apdu, 5, aid.length);
        return apdu;
    }

    /** The whole perso of the PPSE applet: SELECT + one STORE DATA with DGI 9102. */
    public static List<byte[]> forPpse(byte[] fci) {
        ByteArrayOutputStream s = new ByteArrayOutputStream();
        dgi(s, 0x9102, fci);
        List<byte[]> out = new ArrayList<>();
        out.add(select(PPSE_AID));
        out.addAll(storeData(s.toByteArray()));
        return out;
    }

    /** The whole perso of one payment applet instance: SELECT + STORE DATA blocks. */
    public static List<byte[]> forPayment(CardImage card) {
        List<byte[]> out = new ArrayList<>();
        out.add(select(card.aid));
        out.addAll(storeData(dgiStream(card)));
        return out;
    }

    /** The DGI stream, in the documented order. */
    public static byte[] dgiStream(CardImage c) {
        ByteArrayOutputStream s = new ByteArrayOutputStream();
        dgi(s, 0x9102, c.fci);
        dgi(s, 0x9104, concat(c.aip, c.afl));
        ByteArrayOutputStream dols = new ByteArrayOutputStream();
        tlvIfAny(dols, 0x9F38, c.pdol);
        tlvIfAny(dols, 0x8C, c.cdol1);
        tlvIfAny(dols, 0x8D, c.cdol2);
        tlvIfAny(dols, 0x9F49, c.ddol);
        dgi(s, 0xB001, dols.toByteArray());
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        tlv(data, 0x57, c.track2);
        tlv(data, 0x5F34, c.psn);
        tlv(data, 0x9F6C, c.ctq);
        tlv(data, 0xDF10, new byte[] {(byte) c.dki});
        tlv(data, 0xDF11, new byte[] {(byte) c.cvn});
        tlv(data, 0xDF12, new byte[] {(byte) c.fddaVersion});
        dgi(s, 0xB002, data.toByteArray());
        ByteArrayOutputStream risk = new ByteArrayOutputStream();
        tlv(risk, 0xDF71, bcd12(c.offlineAmountLimit));
        tlv(risk, 0x9F14, new byte[] {(byte) c.consecutiveOfflineLimit});
        tlv(risk, 0xDF72, new byte[] {(byte) (c.allowOffline ? 1 : 0)});
        tlv(risk, 0x9F51, c.currency);
        dgi(s, 0xB003, risk.toByteArray());
        if (!c.getData.isEmpty()) {
            ByteArrayOutputStream gd = new ByteArrayOutputStream();
            for (Map.Entry<Integer, byte[]> e : c.getData.entrySet()) {
                tlv(gd, e.getKey(), e.getValue());
            }
            dgi(s, 0xB004, gd.toByteArray());
        }
        if (c.initialAtc != null) {
            dgi(s, 0xB005, new byte[] {(byte) (c.initialAtc >> 8), (byte) (int) c.initialAtc});
        }
        for (CardImage.Record r : c.records) {
            dgi(s, (r.sfi << 8) | r.number, r.data);
        }
        dgi(s, 0x8000, c.masterKeys);
        if (c.rsa != null) {
            dgi(s, 0x8201, c.rsa.qInv);
            dgi(s, 0x8202, c.rsa.dq);
            dgi(s, 0x8203, c.rsa.dp);
            dgi(s, 0x8204, c.rsa.q);
            dgi(s, 0x8205, c.rsa.p);
        }
        return s.toByteArray();
    }

    /** Splits a DGI stream into STORE DATA commands. */
    public static List<byte[]> storeData(byte[] stream) {
        List<byte[]> out = new ArrayList<>();
        int blocks = Math.max(1, (stream.length + BLOCK - 1) / BLOCK);
        for (int b = 0; b < blocks; b++) {
            int off = b * BLOCK;
            int len = Math.min(BLOCK, stream.length - off);
            byte[] apdu = new byte[5 + len];
            apdu[0] = (byte) 0x80;
            apdu[1] = (byte) 0xE2;
            apdu[2] = (byte) (b == blocks - 1 ? 0x88 : 0x08);
            apdu[3] = (byte) b;
            apdu[4] = (byte) len;
            System.arraycopy(stream, off, apdu, 5, len);
            out.add(apdu);
        }
        return out;
    }

    /**
     * GlobalPlatform install parameters for the payment applet: the ICC RSA modulus length in
     * bytes, as {@code C9 02 xx xx} (what {@code gp --params XXXX} sends).
     */
    public static byte[] installParameters(int modulusBytes) {
        return new byte[] {(byte) 0xC9, 0x02, (byte) (modulusBytes >> 8), (byte) modulusBytes};
    }

    static void dgi(ByteArrayOutputStream s, int dgi, byte[] value) {
        s.write(dgi >> 8);
        s.write(dgi);
        if (value.length <= 0xFE) {
            s.write(value.length);
        } else {
            s.write(0xFF);
            s.write(value.length >> 8);
            s.write(value.length);
        }
        s.write(value, 0, value.length);
    }

    static void tlv(ByteArrayOutputStream s, int tag, byte[] value) {
        if (tag > 0xFF) {
            s.write(tag >> 8);
        }
        s.write(tag);
        if (value.length < 0x80) {
            s.write(value.length);
        } else if (value.length < 0x100) {
            s.write(0x81);
            s.write(value.length);
        } else {
            s.write(0x82);
            s.write(value.length >> 8);
            s.write(value.length);
        }
        s.write(value, 0, value.length);
    }

    private static void tlvIfAny(ByteArrayOutputStream s, int tag, byte[] value) {
        if (value != null && value.length > 0) {
            tlv(s, tag, value);
        }
    }

    static byte[] bcd12(long amount) {
        String digits = String.format("%012d", amount);
        if (digits.length() != 12 || amount < 0) {
            throw new IllegalArgumentException("amount out of n12 range: " + amount);
        }
        return Hex.decode(digits);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
