package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * Card risk management for the qPBOC quick path and the first GENERATE AC (C-7 / JR/T 0025 card
 * action analysis, reduced to the data the card profile carries): the card decides between an
 * offline approval (TC), going online (ARQC) and a decline (AAC).
 *
 * <p>Risk data (personalisation DGI B003, updatable by PUT DATA):
 * <ul>
 *   <li>DF71 (emvtap proprietary): offline amount limit, n12 like 9F02;</li>
 *   <li>9F23: upper consecutive offline limit (binary, 1 byte);</li>
 *   <li>DF72 (emvtap proprietary): 01 offline approvals allowed, 00 never offline.</li>
 * </ul>
 */
final class CardRiskManagement {

    static final byte CID_AAC = 0x00;
    static final byte CID_TC = 0x40;
    static final byte CID_ARQC = (byte) 0x80;

    static final short TAG_OFFLINE_AMOUNT_LIMIT = (short) 0xDF71;
    static final short TAG_CONSECUTIVE_OFFLINE_LIMIT = (short) 0x9F23;
    static final short TAG_ALLOW_OFFLINE = (short) 0xDF72;

    // TTQ 9F66 bits (digest §2.2)
    private static final byte TTQ1_OFFLINE_ONLY_READER = 0x08;
    private static final byte TTQ2_ONLINE_CRYPTOGRAM_REQUIRED = (byte) 0x80;

    private final byte[] offlineAmountLimit;
    private byte consecutiveOfflineLimit;
    private boolean allowOffline;
    private byte consecutiveOffline;

    CardRiskManagement() {
        offlineAmountLimit = new byte[6];
    }

    /**
     * qPBOC quick-path decision in GPO (C-7 card risk management): go online when the reader
     * asks for it (TTQ byte 2 b8), when offline is not allowed, when the amount exceeds the
     * offline limit, when the consecutive offline count has reached its limit, or when the card
     * cannot sign fDDA; otherwise approve offline. An online decision on an offline-only reader
     * (TTQ byte 1 b4) becomes a decline.
     */
    byte decideQuickPath(byte[] ttq, short ttqOff, byte[] amount, short amountOff, boolean canSign) {
        boolean online = (ttq[(short) (ttqOff + 1)] & TTQ2_ONLINE_CRYPTOGRAM_REQUIRED) != 0
                || !offlineAllowed(amount, amountOff)
                || !canSign;
        if (!online) {
            return CID_TC;
        }
        if ((ttq[ttqOff] & TTQ1_OFFLINE_ONLY_READER) != 0) {
            return CID_AAC;
        }
        return CID_ARQC;
    }

    /**
     * First GENERATE AC (Book 3, 9.3 card action analysis): the card never gives a stronger
     * cryptogram than asked (AAC &lt; ARQC &lt; TC), and turns a TC request into an ARQC when its
     * offline checks fail.
     */
    byte decideFirstGenerateAc(byte requested, byte[] amount, short amountOff) {
        if (requested == CID_AAC) {
            return CID_AAC;
        }
        if (requested == CID_TC && offlineAllowed(amount, amountOff)) {
            return CID_TC;
        }
        return CID_ARQC;
    }

    private boolean offlineAllowed(byte[] amount, short amountOff) {
        return allowOffline
                && Util.arrayCompare(amount, amountOff, offlineAmountLimit, (short) 0, (short) 6) <= 0
                && (consecutiveOffline & 0xFF) < (consecutiveOfflineLimit & 0xFF);
    }

    /** Counts offline approvals; an online cryptogram resets the count (the issuer saw the card). */
    void recordOutcome(byte cid) {
        if (cid == CID_TC) {
            if (consecutiveOffline != (byte) 0xFF) {
                consecutiveOffline++;
            }
        } else if (cid == CID_ARQC) {
            consecutiveOffline = 0;
        }
    }

    /** Sets one risk data object (perso DGI B003 or PUT DATA); false if the tag is not one. */
    boolean put(short tag, byte[] buf, short off, short len) {
        switch (tag) {
            case TAG_OFFLINE_AMOUNT_LIMIT:
                checkLength(len, (short) 6);
                Util.arrayCopy(buf, off, offlineAmountLimit, (short) 0, (short) 6);
                return true;
            case TAG_CONSECUTIVE_OFFLINE_LIMIT:
                checkLength(len, (short) 1);
                consecutiveOfflineLimit = buf[off];
                return true;
            case TAG_ALLOW_OFFLINE:
                checkLength(len, (short) 1);
                allowOffline = buf[off] != 0;
                return true;
            default:
                return false;
        }
    }

    /** Writes the TLV of one risk data object (GET DATA); returns the new offset, or -1. */
    short get(short tag, byte[] out, short off) {
        switch (tag) {
            case TAG_OFFLINE_AMOUNT_LIMIT:
                return Tlv.put(out, off, tag, offlineAmountLimit, (short) 0, (short) 6);
            case TAG_CONSECUTIVE_OFFLINE_LIMIT:
                return Tlv.putByte(out, off, tag, consecutiveOfflineLimit);
            case TAG_ALLOW_OFFLINE:
                return Tlv.putByte(out, off, tag, allowOffline ? (byte) 1 : (byte) 0);
            default:
                return Tlv.NOT_FOUND;
        }
    }

    private static void checkLength(short len, short want) {
        if (len != want) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }
}
