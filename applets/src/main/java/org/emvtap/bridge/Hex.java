package org.emvtap.bridge;

/** Hex text to bytes and back (host side). */
final class Hex {

    private Hex() {
    }

    static byte[] decode(String hex) {
        String s = hex.replace(" ", "");
        if ((s.length() & 1) != 0) {
            throw new IllegalArgumentException("odd-length hex: " + hex);
        }
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16);
            int lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("not hex: " + hex);
            }
            out[i] = (byte) ((hi << 4) | lo);
        }
        return out;
    }

    static String encode(byte[] data) {
        return encode(data, 0, data.length);
    }

    static String encode(byte[] data, int off, int len) {
        StringBuilder sb = new StringBuilder(len * 2);
        for (int i = off; i < off + len; i++) {
            sb.append(Character.forDigit((data[i] >> 4) & 0xF, 16)).append(Character.forDigit(data[i] & 0xF, 16));
        }
        return sb.toString().toUpperCase();
    }
}
