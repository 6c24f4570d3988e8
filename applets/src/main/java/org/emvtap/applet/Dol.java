package org.emvtap.applet;

import javacard.framework.Util;

/**
 * Data Object Lists (PDOL, CDOL1/2, DDOL): a list of tag ‖ length with no values; the terminal
 * sends the values concatenated in list order (EMV 4.4 Book 3, 5.4). The card, which wrote the
 * list, finds a value by walking the list and adding up the lengths.
 */
final class Dol {

    private Dol() {
    }

    /** Total length of the data the terminal must send for this DOL. */
    static short dataLength(byte[] dol, short off, short len) {
        short end = (short) (off + len);
        short total = 0;
        short p = off;
        while (p < end) {
            p = (short) (p + Tlv.tagSize(dol, p));
            total = (short) (total + (dol[p] & 0xFF));
            p++;
        }
        return total;
    }

    /**
     * Offset, inside the DOL data, of the value for {@code tag}; {@link Tlv#NOT_FOUND} if the DOL
     * does not list it. {@link #entryLength} gives its length.
     */
    static short valueOffset(byte[] dol, short off, short len, short tag) {
        short end = (short) (off + len);
        short pos = 0;
        short p = off;
        while (p < end) {
            short t = Tlv.tagAt(dol, p);
            p = (short) (p + Tlv.tagSize(dol, p));
            if (t == tag) {
                return pos;
            }
            pos = (short) (pos + (dol[p] & 0xFF));
            p++;
        }
        return Tlv.NOT_FOUND;
    }

    /** Length the DOL gives {@code tag}, 0 if it does not list it. */
    static short entryLength(byte[] dol, short off, short len, short tag) {
        short end = (short) (off + len);
        short p = off;
        while (p < end) {
            short t = Tlv.tagAt(dol, p);
            p = (short) (p + Tlv.tagSize(dol, p));
            if (t == tag) {
                return (short) (dol[p] & 0xFF);
            }
            p++;
        }
        return 0;
    }

    /**
     * Copies the value of {@code tag} from DOL data into {@code dest} as exactly {@code want}
     * bytes: zeros when the DOL does not list the tag, right-aligned with leading zeros when the
     * DOL gives it fewer bytes, truncated on the right when more (Book 3, 5.4, for numeric data
     * that is what the terminal does; the card applies the same rule when it reads back).
     */
    static short copyValue(byte[] dol, short dolOff, short dolLen, short tag,
                           byte[] data, short dataOff, byte[] dest, short destOff, short want) {
        Util.arrayFillNonAtomic(dest, destOff, want, (byte) 0);
        short at = valueOffset(dol, dolOff, dolLen, tag);
        if (at != Tlv.NOT_FOUND) {
            short have = entryLength(dol, dolOff, dolLen, tag);
            if (have >= want) {
                Util.arrayCopyNonAtomic(data, (short) (dataOff + at), dest, destOff, want);
            } else {
                Util.arrayCopyNonAtomic(data, (short) (dataOff + at), dest,
                        (short) (destOff + want - have), have);
            }
        }
        return (short) (destOff + want);
    }
}
