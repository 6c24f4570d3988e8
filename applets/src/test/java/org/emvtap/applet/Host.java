package org.emvtap.applet;

import java.math.BigInteger;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;

/**
 * The terminal / issuer side of the checks, written independently of the applet with the JDK's
 * own DES and BigInteger: PBOC session keys, retail MAC, ARPC, RSA recovery, a TLV reader.
 */
final class Host {

    private Host() {
    }

    static byte[] hex(String s) {
        s = s.replace(" ", "");
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02X", x));
        }
        return sb.toString();
    }

    static byte[] cat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int o = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    static byte[] des(byte[] key8, byte[] block, int mode) throws Exception {
        Cipher c = Cipher.getInstance("DES/ECB/NoPadding");
        c.init(mode, new SecretKeySpec(key8, "DES"));
        return c.doFinal(block);
    }

    static byte[] des3(byte[] key16, byte[] data) throws Exception {
        byte[] k24 = cat(key16, Arrays.copyOf(key16, 8));
        Cipher c = Cipher.getInstance("DESede/ECB/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(k24, "DESede"));
        return c.doFinal(data);
    }

    /** PBOC: SK = 3DES_MK(00×6 ‖ ATC) ‖ 3DES_MK(00×6 ‖ ATC ⊕ FFFF). */
    static byte[] pbocSessionKey(byte[] mk, int atc) throws Exception {
        byte[] a = new byte[8];
        byte[] b = new byte[8];
        a[6] = (byte) (atc >> 8);
        a[7] = (byte) atc;
        b[6] = (byte) ~(atc >> 8);
        b[7] = (byte) ~atc;
        return cat(des3(mk, a), des3(mk, b));
    }

    /** ISO 9797-1 MAC algorithm 3 with padding method 2. */
    static byte[] retailMac(byte[] key16, byte[] data) throws Exception {
        int padded = (data.length / 8 + 1) * 8;
        byte[] m = Arrays.copyOf(data, padded);
        m[data.length] = (byte) 0x80;
        byte[] kl = Arrays.copyOf(key16, 8);
        byte[] kr = Arrays.copyOfRange(key16, 8, 16);
        byte[] h = new byte[8];
        for (int i = 0; i < padded; i += 8) {
            for (int j = 0; j < 8; j++) {
                h[j] ^= m[i + j];
            }
            h = des(kl, h, Cipher.ENCRYPT_MODE);
        }
        h = des(kr, h, Cipher.DECRYPT_MODE);
        return des(kl, h, Cipher.ENCRYPT_MODE);
    }

    static byte[] arpcMethod1(byte[] sk, byte[] arqc, byte[] arc) throws Exception {
        byte[] x = arqc.clone();
        x[0] ^= arc[0];
        x[1] ^= arc[1];
        return des3(sk, x);
    }

    static byte[] recover(byte[] sig, BigInteger n, BigInteger e) {
        byte[] raw = new BigInteger(1, sig).modPow(e, n).toByteArray();
        int len = (n.bitLength() + 7) / 8;
        byte[] out = new byte[len];
        if (raw.length > len) {
            System.arraycopy(raw, raw.length - len, out, 0, len);
        } else {
            System.arraycopy(raw, 0, out, len - raw.length, raw.length);
        }
        return out;
    }

    static byte[] sha1(byte[]... parts) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-1");
        for (byte[] p : parts) {
            md.update(p);
        }
        return md.digest();
    }

    /** A primitive TLV read from a response. */
    static final class Tlv {
        final int tag;
        final byte[] value;
        final byte[] encoded;

        Tlv(int tag, byte[] value, byte[] encoded) {
            this.tag = tag;
            this.value = value;
            this.encoded = encoded;
        }
    }

    /** The TLVs inside the outer template (77, 70, 6F ...), in order, one level deep. */
    static List<Tlv> inside(byte[] data) {
        int[] hdr = header(data, 0);
        return list(data, hdr[0], hdr[1]);
    }

    static List<Tlv> list(byte[] d, int off, int len) {
        List<Tlv> out = new ArrayList<>();
        int p = off;
        while (p < off + len) {
            int[] h = header(d, p);
            int tag = (d[p] & 0x1F) == 0x1F ? ((d[p] & 0xFF) << 8) | (d[p + 1] & 0xFF) : d[p] & 0xFF;
            out.add(new Tlv(tag, Arrays.copyOfRange(d, h[0], h[0] + h[1]), Arrays.copyOfRange(d, p, h[0] + h[1])));
            p = h[0] + h[1];
        }
        return out;
    }

    /** {value offset, value length} of the TLV at {@code p}. */
    static int[] header(byte[] d, int p) {
        p += (d[p] & 0x1F) == 0x1F ? 2 : 1;
        int l = d[p] & 0xFF;
        if (l == 0x81) {
            return new int[] {p + 2, d[p + 1] & 0xFF};
        }
        if (l == 0x82) {
            return new int[] {p + 3, ((d[p + 1] & 0xFF) << 8) | (d[p + 2] & 0xFF)};
        }
        return new int[] {p + 1, l};
    }

    static byte[] value(List<Tlv> tlvs, int tag) {
        for (Tlv t : tlvs) {
            if (t.tag == tag) {
                return t.value;
            }
        }
        return null;
    }

    static int[] tags(List<Tlv> tlvs) {
        int[] out = new int[tlvs.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = tlvs.get(i).tag;
        }
        return out;
    }
}
