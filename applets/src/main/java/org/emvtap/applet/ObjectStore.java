package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * The card's personalised data objects, keyed by a short: records by their DGI (SFI ‖ record
 * number, as in EMV CPS), everything else by its EMV tag (FCI 6F, PDOL 9F38, AIP 82, ...). SFI 0
 * is never valid, so the two kinds of keys cannot collide.
 *
 * <p>One byte pool and one directory, both allocated at install (Java Card: no allocation
 * afterwards). A value can be replaced by one of the same length (PUT DATA); a new key appends.
 */
final class ObjectStore {

    private static final short MAX_OBJECTS = 48;

    private final byte[] pool;
    private final short[] keys;
    private final short[] offsets;
    private final short[] lengths;
    private short count;
    private short used;

    ObjectStore(short poolSize) {
        pool = new byte[poolSize];
        keys = new short[MAX_OBJECTS];
        offsets = new short[MAX_OBJECTS];
        lengths = new short[MAX_OBJECTS];
    }

    byte[] pool() {
        return pool;
    }

    private short indexOf(short key) {
        for (short i = 0; i < count; i++) {
            if (keys[i] == key) {
                return i;
            }
        }
        return Tlv.NOT_FOUND;
    }

    boolean has(short key) {
        return indexOf(key) != Tlv.NOT_FOUND;
    }

    /** Offset of the value in {@link #pool()}; {@link Tlv#NOT_FOUND} if absent. */
    short offset(short key) {
        short i = indexOf(key);
        return i == Tlv.NOT_FOUND ? Tlv.NOT_FOUND : offsets[i];
    }

    /** Length of the value; 0 if absent. */
    short length(short key) {
        short i = indexOf(key);
        return i == Tlv.NOT_FOUND ? 0 : lengths[i];
    }

    /**
     * Stores a value. An existing key keeps its place and must keep its length (6700 otherwise);
     * a full pool or directory gives 6A84 (not enough memory space in the file).
     */
    void put(short key, byte[] src, short off, short len) {
        short i = indexOf(key);
        if (i != Tlv.NOT_FOUND) {
            if (lengths[i] != len) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
            Util.arrayCopy(src, off, pool, offsets[i], len);
            return;
        }
        if (count >= MAX_OBJECTS || (short) (used + len) > (short) pool.length || len < 0) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        Util.arrayCopy(src, off, pool, used, len);
        keys[count] = key;
        offsets[count] = used;
        lengths[count] = len;
        used = (short) (used + len);
        count++;
    }

    /** True if some record with this SFI is stored (READ RECORD: 6A83 versus 6A82). */
    boolean hasSfi(byte sfi) {
        for (short i = 0; i < count; i++) {
            if ((byte) (keys[i] >> 8) == sfi) {
                return true;
            }
        }
        return false;
    }
}
