package org.emvtap.applet;

import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.DESKey;

/**
 * PBOC / UnionPay CVN 01 application cryptograms (JR/T 0025.7; docs/emv-notes.md, Cryptogram versions) and the Issuer
 * Application Data that carries their CVR.
 *
 * <p>AC = retail MAC (ISO 9797-1 alg 3, padding method 2) under the session key derived from the
 * AC master key with the ATC, over 9F02 ‖ 9F03 ‖ 9F1A ‖ 95 ‖ 5F2A ‖ 9A ‖ 9C ‖ 9F37 (from the PDOL or
 * CDOL data, zeros for a tag the DOL does not list) ‖ AIP 82 ‖ ATC 9F36 ‖ CVR (IAD bytes 4-7).
 *
 * <p>IAD 9F10 = 07 ‖ DKI ‖ CVN 01 ‖ CVR (03 ‖ 3 bytes) ‖ algorithm 01 (3DES).
 */
final class ApplicationCryptogram {

    static final byte CVN_01 = 0x01;
    static final short CVR_LENGTH = 4;
    static final short IAD_LENGTH = 8;
    static final short AC_LENGTH = 8;
    private static final byte ALGORITHM_3DES = 0x01;
    private static final short MAC_INPUT_LENGTH = 37;

    /** Terminal data in the cryptogram, in order, with their lengths (Book 2, 8.1.1). */
    private static final short[] TERMINAL_TAGS = {
        (short) 0x9F02, (short) 0x9F03, (short) 0x9F1A, (short) 0x0095,
        (short) 0x5F2A, (short) 0x009A, (short) 0x009C, (short) 0x9F37
    };
    private static final byte[] TERMINAL_LENGTHS = {6, 6, 2, 5, 2, 3, 1, 4};

    // CVR byte 2 (VIS / PBOC): b8-b7 AC of the 2nd GENERATE AC (10 = not requested),
    // b6-b5 AC of the 1st GENERATE AC or GPO (00 AAC, 01 TC, 10 ARQC)
    static final byte CVR2_SECOND_NOT_REQUESTED = (byte) 0x80;

    private final PbocCrypto crypto;
    private final byte[] macInput;
    private byte dki;

    ApplicationCryptogram(PbocCrypto crypto) {
        this.crypto = crypto;
        macInput = JCSystem.makeTransientByteArray(MAC_INPUT_LENGTH, JCSystem.CLEAR_ON_DESELECT);
    }

    void setDki(byte value) {
        dki = value;
    }

    /** CVR byte 2 bits b6-b5 for a first cryptogram of type {@code cid}. */
    static byte firstAcBits(byte cid) {
        if (cid == CardRiskManagement.CID_TC) {
            return 0x10;
        }
        if (cid == CardRiskManagement.CID_ARQC) {
            return 0x20;
        }
        return 0x00;
    }

    /**
     * Computes the AC for {@code atc} into {@code ac} (8 bytes), reading the terminal data from the
     * DOL data {@code data} laid out by {@code dol}.
     */
    void generate(DESKey masterKey, byte[] dol, short dolOff, short dolLen,
                  byte[] data, short dataOff, byte[] aip, short aipOff, short atc,
                  byte[] cvr, short cvrOff, byte[] ac, short acOff) {
        generate(masterKey, dol, dolOff, dolLen, data, dataOff, dol, dolOff, (short) 0, data, dataOff,
                aip, aipOff, atc, cvr, cvrOff, ac, acOff);
    }

    /**
     * The same with two DOLs, as the second GENERATE AC needs: a terminal data element the
     * second DOL (CDOL2) lists is taken from its data, the others from the first (CDOL1) - the
     * transaction's values, updated where the terminal sent them again (TVR, UN).
     */
    void generate(DESKey masterKey, byte[] dol, short dolOff, short dolLen,
                  byte[] data, short dataOff, byte[] dol2, short dol2Off, short dol2Len,
                  byte[] data2, short data2Off, byte[] aip, short aipOff, short atc,
                  byte[] cvr, short cvrOff, byte[] ac, short acOff) {
        short p = 0;
        for (short i = 0; i < (short) TERMINAL_TAGS.length; i++) {
            short tag = TERMINAL_TAGS[i];
            if (Dol.valueOffset(dol2, dol2Off, dol2Len, tag) != Tlv.NOT_FOUND) {
                p = Dol.copyValue(dol2, dol2Off, dol2Len, tag, data2, data2Off,
                        macInput, p, TERMINAL_LENGTHS[i]);
            } else {
                p = Dol.copyValue(dol, dolOff, dolLen, tag, data, dataOff,
                        macInput, p, TERMINAL_LENGTHS[i]);
            }
        }
        p = Util.arrayCopyNonAtomic(aip, aipOff, macInput, p, (short) 2);
        p = Util.setShort(macInput, p, atc);
        p = Util.arrayCopyNonAtomic(cvr, cvrOff, macInput, p, CVR_LENGTH);
        crypto.deriveSessionKey(masterKey, atc);
        crypto.macBegin();
        crypto.macFinish(macInput, (short) 0, p, ac, acOff);
    }

    /** Writes the 9F10 TLV for this CVR; returns the offset after it. */
    short putIad(byte[] out, short off, byte[] cvr, short cvrOff) {
        off = Tlv.putTag(out, off, (short) 0x9F10);
        out[off++] = (byte) IAD_LENGTH;
        return putIadValue(out, off, cvr, cvrOff);
    }

    /** Writes the IAD value (8 bytes) for this CVR; returns the offset after it. */
    short putIadValue(byte[] out, short off, byte[] cvr, short cvrOff) {
        out[off++] = 0x07;
        out[off++] = dki;
        out[off++] = CVN_01;
        off = Util.arrayCopyNonAtomic(cvr, cvrOff, out, off, CVR_LENGTH);
        out[off++] = ALGORITHM_3DES;
        return off;
    }
}
