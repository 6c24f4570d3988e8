package org.emvtap.applet;

/**
 * BER-TLV reading and writing on byte arrays, as EMV uses it (EMV 4.4 Book 3, Annex B).
 *
 * <p>Tags of one or two bytes are returned as a {@code short} (0x9F36, 0x0082); three-byte tags
 * are stepped over correctly but cannot be searched for. Lengths are 1, 2 ({@code 81 xx}) or 3
 * ({@code 82 xx xx}) bytes; values past 32767 bytes do not occur on a card. Java Card classic:
 * short arithmetic only, no allocation.
 */
final class Tlv {

    static final short NOT_FOUND = (short) -1;

    private Tlv() {
    }

    /** Number of bytes of the tag that starts at {@code off} (Book 3, B1). */
    static short tagSize(byte[] buf, short off) {
        if ((buf[off] & 0x1F) != 0x1F) {
            return 1;
        }
        short n = 2;
        while ((buf[(short) (off + n - 1)] & 0x80) != 0) {
            n++;
        }
        return n;
    }

    /** The tag at {@code off} as a short (one or two bytes; longer tags give their first two). */
    static short tagAt(byte[] buf, short off) {
        if (tagSize(buf, off) == 1) {
            return (short) (buf[off] & 0xFF);
        }
        return (short) (((buf[off] & 0xFF) << 8) | (buf[(short) (off + 1)] & 0xFF));
    }

    static boolean isConstructed(byte[] buf, short off) {
        return (buf[off] & 0x20) != 0;
    }

    /** Number of bytes of the length field at {@code off} (Book 3, B2). */
    static short lengthSize(byte[] buf, short off) {
        byte b = buf[off];
        if ((b & 0x80) == 0) {
            return 1;
        }
        return (short) (1 + (b & 0x7F));
    }

    /** The value length coded at {@code off}; {@link ISO7816#SW_WRONG_DATA} for forms we do not take. */
    static short lengthAt(byte[] buf, short off) {
        byte b = buf[off];
        if ((b & 0x80) == 0) {
            return b;
        }
        if (b == (byte) 0x81) {
            return (short) (buf[(short) (off + 1)] & 0xFF);
        }
        if (b == (byte) 0x82 && (buf[(short) (off + 1)] & 0x80) == 0) {
            return (short) (((buf[(short) (off + 1)] & 0xFF) << 8) | (buf[(short) (off + 2)] & 0xFF));
        }
        javacard.framework.ISOException.throwIt(javacard.framework.ISO7816.SW_WRONG_DATA);
        return 0;
    }

    /** Offset of the value of the TLV whose tag starts at {@code tlvOff}. */
    static short valueOffset(byte[] buf, short tlvOff) {
        short l = (short) (tlvOff + tagSize(buf, tlvOff));
        return (short) (l + lengthSize(buf, l));
    }

    /** Value length of the TLV whose tag starts at {@code tlvOff}. */
    static short valueLength(byte[] buf, short tlvOff) {
        return lengthAt(buf, (short) (tlvOff + tagSize(buf, tlvOff)));
    }

    /** Offset just past the TLV whose tag starts at {@code tlvOff}. */
    static short next(byte[] buf, short tlvOff) {
        return (short) (valueOffset(buf, tlvOff) + valueLength(buf, tlvOff));
    }

    /**
     * Offset of the first TLV with {@code tag} in {@code buf[off, off+len)}, searching into
     * constructed objects depth first; {@link #NOT_FOUND} if absent. Padding bytes 00 / FF between
     * objects are skipped (Book 3, B1).
     */
    static short find(byte[] buf, short off, short len, short tag) {
        short end = (short) (off + len);
        short p = off;
        while (p < end) {
            if (buf[p] == 0x00 || buf[p] == (byte) 0xFF) {
                p++;
                continue;
            }
            if (tagAt(buf, p) == tag) {
                return p;
            }
            short v = valueOffset(buf, p);
            short vl = valueLength(buf, p);
            if ((short) (v + vl) > end || vl < 0) {
                return NOT_FOUND;
            }
            if (isConstructed(buf, p)) {
                short inner = find(buf, v, vl, tag);
                if (inner != NOT_FOUND) {
                    return inner;
                }
            }
            p = (short) (v + vl);
        }
        return NOT_FOUND;
    }

    /** Writes a one- or two-byte tag; returns the offset after it. */
    static short putTag(byte[] out, short off, short tag) {
        if ((tag & (short) 0xFF00) != 0) {
            out[off++] = (byte) (tag >> 8);
        }
        out[off++] = (byte) tag;
        return off;
    }

    /** Writes a definite length (short form below 128, else 81 xx / 82 xx xx). */
    static short putLength(byte[] out, short off, short len) {
        if (len < 0x80) {
            out[off++] = (byte) len;
        } else if (len < 0x100) {
            out[off++] = (byte) 0x81;
            out[off++] = (byte) len;
        } else {
            out[off++] = (byte) 0x82;
            out[off++] = (byte) (len >> 8);
            out[off++] = (byte) len;
        }
        return off;
    }

    /** Writes tag, length and value; returns the offset after the TLV. */
    static short put(byte[] out, short off, short tag, byte[] src, short srcOff, short len) {
        off = putTag(out, off, tag);
        off = putLength(out, off, len);
        javacard.framework.Util.arrayCopyNonAtomic(src, srcOff, out, off, len);
        return (short) (off + len);
    }

    /** Writes a TLV whose value is one byte. */
    static short putByte(byte[] out, short off, short tag, byte value) {
        off = putTag(out, off, tag);
        out[off++] = 1;
        out[off++] = value;
        return off;
    }

    /** Writes a TLV whose value is a two-byte big-endian number. */
    static short putShort(byte[] out, short off, short tag, short value) {
        off = putTag(out, off, tag);
        out[off++] = 2;
        return javacard.framework.Util.setShort(out, off, value);
    }
}
