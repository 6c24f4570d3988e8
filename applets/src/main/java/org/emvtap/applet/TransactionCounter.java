package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * The Application Transaction Counter (9F36) and the Last Online ATC Register (9F13) with the
 * cryptograms that went online (EMV 4.4 Book 3, Annex A; Book 2, 9.2).
 *
 * <p>The ATC is an object field, so it lives in persistent memory and a single write of it is
 * atomic: it is incremented and committed before any cryptogram computed with it leaves the card,
 * and a power loss can skip a value but never repeat one. At FFFF the application can no longer
 * transact (Book 3: the ATC must not wrap).
 *
 * <p>Two slots keep the ATC and ARQC of the last two online cryptograms: issuer scripts delivered
 * on a later tap (qPBOC issuer update) carry a MAC over that ATC and AC, not over the current one.
 */
final class TransactionCounter {

    static final short SLOT_LENGTH = 10; // ATC (2) ‖ AC (8)
    private static final short MAX_ATC = (short) 0xFFFF;

    private short atc;
    private final byte[] onlineSlots;
    private boolean slot0Used;
    /** Last Online ATC Register (9F13): the ATC of the last transaction the issuer answered. */
    private short lastOnlineAtc;
    private boolean slot1Used;

    TransactionCounter() {
        onlineSlots = new byte[(short) (2 * SLOT_LENGTH)];
    }

    short value() {
        return atc;
    }

    /** Initial value at personalisation. */
    void set(short initial) {
        atc = initial;
    }

    /** Increments the ATC (persistently) and returns the new value; 6985 once it is exhausted. */
    short next() {
        if (atc == MAX_ATC) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        atc = (short) (atc + 1);
        return atc;
    }

    /** Records that the cryptogram {@code ac} for {@code forAtc} was an ARQC sent online. */
    void recordOnline(short forAtc, byte[] ac, short acOff) {
        JCSystem.beginTransaction();
        Util.arrayCopy(onlineSlots, (short) 0, onlineSlots, SLOT_LENGTH, SLOT_LENGTH);
        slot1Used = slot0Used;
        Util.setShort(onlineSlots, (short) 0, forAtc);
        Util.arrayCopy(ac, acOff, onlineSlots, (short) 2, (short) 8);
        slot0Used = true;
        JCSystem.commitTransaction();
    }

    /**
     * Last Online ATC Register (9F13), 0000 before the first online transaction: set by a
     * quick-path ARQC (the card does not see the answer) and by a full-path second GENERATE AC
     * whose issuer authentication did not fail (as the HCE card keeps it).
     */
    short lastOnlineAtc() {
        return lastOnlineAtc;
    }

    void setLastOnlineAtc(short value) {
        lastOnlineAtc = value;
    }

    /** True if online slot {@code slot} (0 newest, 1 the one before) holds a cryptogram. */
    boolean slotUsed(short slot) {
        return slot == 0 ? slot0Used : slot1Used;
    }

    /** The slots as ATC ‖ AC, 10 bytes each; slot {@code n} starts at n × 10. */
    byte[] slots() {
        return onlineSlots;
    }
}
