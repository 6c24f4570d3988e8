package org.emvtap.applet;

/** Status words the EMV card uses beyond {@link javacard.framework.ISO7816} (ISO/IEC 7816-4, 5.6). */
final class Sw {

    /** SELECT of a blocked application: FCI returned, "selected file invalidated" (Book 1, 12.3.3). */
    static final short SELECTED_FILE_INVALIDATED = (short) 0x6283;
    /** EXTERNAL AUTHENTICATE whose ARPC does not verify (ISO 7816-4 "state unchanged"). */
    static final short STATE_UNCHANGED_WARNING = (short) 0x6300;
    /** GET DATA / PUT DATA / perso of an object the card does not hold. */
    static final short REFERENCED_DATA_NOT_FOUND = (short) 0x6A88;
    /** Issuer script command whose MAC does not verify (Book 3, 6.5; ISO 7816-4 "incorrect SM data objects"). */
    static final short INCORRECT_SM_DATA = (short) 0x6988;
    /** More response data: GET RESPONSE for the rest; low byte = bytes left (00: 256 or more). */
    static final short BYTES_REMAINING = (short) 0x6100;

    private Sw() {
    }
}
