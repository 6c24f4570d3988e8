package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * Card risk management and card action analysis (EMV 4.4 Book 3, 10.8 and 9.3; C-7 qPBOC card
 * risk management on the quick path), and the Card Verification Results the card reports in its
 * IAD (VIS 1.4 / JR/T 0025.5 layout, 4 bytes with the length 03 first). The rules are those of the
 * HCE card (hce_card/risk.py, hce_card/quick_path.py), so the two forms of the card answer alike.
 *
 * <p>Risk data (personalisation DGI B003, updatable by PUT DATA):
 * <ul>
 *   <li>DF71 (emvtap proprietary): offline amount limit, n12 like 9F02;</li>
 *   <li>9F14: lower consecutive offline limit (binary, 1 byte);</li>
 *   <li>DF72 (emvtap proprietary): 01 offline approvals allowed, 00 never offline;</li>
 *   <li>9F51: application currency code (n3), the only currency approved offline.</li>
 * </ul>
 */
final class CardRiskManagement {

    static final byte CID_AAC = 0x00;
    static final byte CID_TC = 0x40;
    static final byte CID_ARQC = (byte) 0x80;

    static final short TAG_OFFLINE_AMOUNT_LIMIT = (short) 0xDF71;
    static final short TAG_LOWER_CONSECUTIVE_OFFLINE_LIMIT = (short) 0x9F14;
    static final short TAG_ALLOW_OFFLINE = (short) 0xDF72;
    static final short TAG_CURRENCY = (short) 0x9F51;

    // TTQ 9F66 (EMV Contactless Book C-7 / C-3, data dictionary)
    private static final byte TTQ1_OFFLINE_ONLY_READER = 0x08;
    private static final byte TTQ1_ONLINE_PIN = 0x04;
    private static final byte TTQ1_SIGNATURE = 0x02;
    private static final byte TTQ2_ONLINE_CRYPTOGRAM_REQUIRED = (byte) 0x80;
    private static final byte TTQ2_CVM_REQUIRED = 0x40;
    // CTQ 9F6C byte 1 (EMV Contactless Book C-7 / C-3, data dictionary)
    private static final byte CTQ1_ONLINE_PIN_REQUIRED = (byte) 0x80;
    private static final byte CTQ1_SIGNATURE_REQUIRED = 0x40;

    // CVR bytes 3 and 4 (VIS / PBOC)
    private static final byte CVR3_LAST_ONLINE_NOT_COMPLETED = (byte) 0x80;
    private static final byte CVR3_VELOCITY_EXCEEDED = 0x20;
    private static final byte CVR3_NEW_CARD = 0x10;
    private static final byte CVR3_ISSUER_AUTH_FAILED_LAST = 0x08;
    private static final byte CVR3_ISSUER_AUTH_NOT_PERFORMED_LAST = 0x04;
    private static final byte CVR4_SCRIPT_FAILED = 0x08;
    private static final byte CVR4_OFFLINE_DDA_PERFORMED = 0x02;
    /** CVR byte 2 b4: issuer authentication failed (this transaction). */
    static final byte CVR2_ISSUER_AUTH_FAILED = 0x08;
    /** CVR byte 2 b1: unable to go online (ARC Y3/Z3 in the second GENERATE AC). */
    static final byte CVR2_UNABLE_TO_GO_ONLINE = 0x01;

    private final byte[] offlineAmountLimit;
    private final byte[] currency;
    private byte lowerConsecutiveOfflineLimit;
    private boolean allowOffline;

    // counters and flags of the previous transactions (persistent)
    private byte consecutiveOffline;
    private boolean lastOnlineNotCompleted;
    private boolean issuerAuthenticationFailed;
    private boolean issuerAuthenticationNotPerformed;
    private byte scriptCommands;
    private boolean scriptFailed;

    CardRiskManagement() {
        offlineAmountLimit = new byte[6];
        currency = new byte[] {0x01, 0x56};
        allowOffline = true;
    }

    /**
     * Book 3 10.8 / C-7: true if the card has any reason to go online rather than approve
     * offline: offline not allowed, amount above the offline limit, lower consecutive offline
     * limit reached, another currency, issuer authentication failed or the last online
     * transaction not completed.
     */
    boolean mustGoOnline(byte[] amount, short amountOff, byte[] cur, short curOff) {
        return !allowOffline
                || Util.arrayCompare(amount, amountOff, offlineAmountLimit, (short) 0, (short) 6) > 0
                || (consecutiveOffline & 0xFF) >= (lowerConsecutiveOfflineLimit & 0xFF)
                || Util.arrayCompare(cur, curOff, currency, (short) 0, (short) 2) != 0
                || issuerAuthenticationFailed
                || lastOnlineNotCompleted;
    }

    /**
     * The velocity checks are beyond their lower limit (VIS CVR byte 3 b6 "exceeded velocity
     * checking counters"): the consecutive offline count has reached the lower limit.
     */
    boolean velocityExceeded() {
        return (consecutiveOffline & 0xFF) >= (lowerConsecutiveOfflineLimit & 0xFF);
    }

    /**
     * qPBOC quick-path decision in GPO (C-7 card action analysis). CVM first: when the reader
     * requires one (TTQ byte 2 b7) the card asks for online PIN (CTQ byte 1 b8, going online) if
     * the reader takes it, else for a signature (CTQ byte 1 b7), else declines. Then online when
     * the reader asks for it (TTQ byte 2 b8) or card risk management finds a reason; an online
     * decision on an offline-only reader (TTQ byte 1 b4) is a decline. {@code ctq} (2 bytes) is
     * the CTQ returned, updated in place.
     */
    byte decideQuickPath(byte[] ttq, short ttqOff, byte[] amount, short amountOff,
                         byte[] cur, short curOff, byte[] ctq, short ctqOff) {
        boolean online = false;
        if ((ttq[(short) (ttqOff + 1)] & TTQ2_CVM_REQUIRED) != 0) {
            if ((ttq[ttqOff] & TTQ1_ONLINE_PIN) != 0) {
                ctq[ctqOff] |= CTQ1_ONLINE_PIN_REQUIRED;
                online = true;
            } else if ((ttq[ttqOff] & TTQ1_SIGNATURE) != 0) {
                ctq[ctqOff] |= CTQ1_SIGNATURE_REQUIRED;
            } else {
                return CID_AAC; // no CVM the card and the reader share
            }
        }
        if ((ttq[(short) (ttqOff + 1)] & TTQ2_ONLINE_CRYPTOGRAM_REQUIRED) != 0
                || mustGoOnline(amount, amountOff, cur, curOff)) {
            online = true;
        }
        if (!online) {
            return CID_TC;
        }
        if ((ttq[ttqOff] & TTQ1_OFFLINE_ONLY_READER) != 0) {
            return CID_AAC;
        }
        return CID_ARQC;
    }

    /**
     * First GENERATE AC (Book 3, 9.3; 6.5.5.4: never above what was asked, AAC &lt; TC &lt; ARQC
     * in strength of approval): AAC and ARQC requests are granted, a TC request becomes an ARQC
     * when card risk management finds a reason to go online.
     */
    byte decideFirstGenerateAc(byte requested, byte[] amount, short amountOff, byte[] cur, short curOff) {
        if (requested == CID_AAC || requested == CID_ARQC) {
            return requested;
        }
        return mustGoOnline(amount, amountOff, cur, curOff) ? CID_ARQC : CID_TC;
    }

    /**
     * At GPO, before anything changes: the CVR bits that report the previous transactions
     * (byte 3: last online not completed, new card, issuer authentication failed last time;
     * byte 4: script commands and script failure), written to {@code before[off, off+2)}; then
     * the script counters start afresh (the HCE card's begin_transaction does the same).
     */
    void startTransaction(byte[] before, short off, boolean newCard) {
        byte b3 = 0;
        if (lastOnlineNotCompleted) {
            b3 |= CVR3_LAST_ONLINE_NOT_COMPLETED;
        }
        if (newCard) {
            b3 |= CVR3_NEW_CARD;
        }
        if (issuerAuthenticationFailed) {
            b3 |= CVR3_ISSUER_AUTH_FAILED_LAST;
        }
        if (issuerAuthenticationNotPerformed) {
            b3 |= CVR3_ISSUER_AUTH_NOT_PERFORMED_LAST;
        }
        byte b4 = (byte) ((scriptCommands > 15 ? 15 : scriptCommands) << 4);
        if (scriptFailed) {
            b4 |= CVR4_SCRIPT_FAILED;
        }
        before[off] = b3;
        before[(short) (off + 1)] = b4;
        scriptCommands = 0;
        scriptFailed = false;
    }

    /**
     * Writes the CVR of a cryptogram: byte 2 the AC types ({@code secondAcBits} b8-b7, first AC
     * b6-b5), bytes 3 and 4 the state before the transaction ({@link #startTransaction}) plus
     * this transaction's velocity and offline DDA flags.
     */
    static void buildCvr(byte[] cvr, short off, byte secondAcBits, byte firstCid,
                         byte[] before, short beforeOff, boolean velocityExceeded, boolean offlineDda) {
        cvr[off] = 0x03;
        cvr[(short) (off + 1)] = (byte) (secondAcBits | ApplicationCryptogram.firstAcBits(firstCid));
        byte b3 = before[beforeOff];
        if (velocityExceeded) {
            b3 |= CVR3_VELOCITY_EXCEEDED;
        }
        cvr[(short) (off + 2)] = b3;
        byte b4 = before[(short) (beforeOff + 1)];
        if (offlineDda) {
            b4 |= CVR4_OFFLINE_DDA_PERFORMED;
        }
        cvr[(short) (off + 3)] = b4;
    }

    /**
     * Counts offline approvals; an online cryptogram ends the offline run (the issuer sees the
     * account) and, on the full path, stays "not completed" until the second GENERATE AC.
     */
    void recordOutcome(byte cid, boolean fullPath) {
        if (cid == CID_TC) {
            if (consecutiveOffline != (byte) 0xFF) {
                consecutiveOffline++;
            }
            lastOnlineNotCompleted = false;
        } else if (cid == CID_ARQC) {
            consecutiveOffline = 0;
            lastOnlineNotCompleted = fullPath;
        } else {
            lastOnlineNotCompleted = false;
        }
    }

    /**
     * Second GENERATE AC after an online answer: the transaction completed; issuer
     * authentication failed or not performed is remembered for the next CVR, and unless it
     * failed the offline run ends.
     */
    void recordSecondGenerateAc(boolean issuerAuthFailed, boolean notPerformed) {
        lastOnlineNotCompleted = false;
        issuerAuthenticationFailed = issuerAuthFailed;
        issuerAuthenticationNotPerformed = notPerformed;
        if (!issuerAuthFailed) {
            consecutiveOffline = 0;
        }
    }

    /** Second GENERATE AC when the terminal could not go online: an offline completion. */
    void recordOfflineCompletion(byte cid) {
        lastOnlineNotCompleted = false;
        if (cid == CID_TC && consecutiveOffline != (byte) 0xFF) {
            consecutiveOffline++;
        }
    }

    /**
     * The upper velocity limits (Book 3 10.8), checked when the terminal could not go online:
     * offline not allowed, consecutive offline count at the limit, amount above the offline
     * limit. (The HCE card's separate upper consecutive limit defaults to the lower one.)
     */
    boolean upperLimitsExceeded(byte[] amount, short amountOff) {
        return !allowOffline || velocityExceeded()
                || Util.arrayCompare(amount, amountOff, offlineAmountLimit, (short) 0, (short) 6) > 0;
    }

    /** EXTERNAL AUTHENTICATE: a valid ARPC ends the offline run; a wrong one is remembered. */
    void recordIssuerAuthentication(boolean valid) {
        issuerAuthenticationFailed = !valid;
        if (valid) {
            consecutiveOffline = 0;
            issuerAuthenticationNotPerformed = false;
        }
    }

    /** An issuer script command was processed (successfully or not). */
    void recordScriptCommand(boolean ok) {
        if (scriptCommands != 15) {
            scriptCommands++;
        }
        if (!ok) {
            scriptFailed = true;
        }
    }

    /** Sets one risk data object (perso DGI B003 or PUT DATA); false if the tag is not one. */
    boolean put(short tag, byte[] buf, short off, short len) {
        switch (tag) {
            case TAG_OFFLINE_AMOUNT_LIMIT:
                checkLength(len, (short) 6);
                Util.arrayCopy(buf, off, offlineAmountLimit, (short) 0, (short) 6);
                return true;
            case TAG_LOWER_CONSECUTIVE_OFFLINE_LIMIT:
                checkLength(len, (short) 1);
                lowerConsecutiveOfflineLimit = buf[off];
                return true;
            case TAG_ALLOW_OFFLINE:
                checkLength(len, (short) 1);
                allowOffline = buf[off] != 0;
                return true;
            case TAG_CURRENCY:
                checkLength(len, (short) 2);
                Util.arrayCopy(buf, off, currency, (short) 0, (short) 2);
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
            case TAG_LOWER_CONSECUTIVE_OFFLINE_LIMIT:
                return Tlv.putByte(out, off, tag, lowerConsecutiveOfflineLimit);
            case TAG_ALLOW_OFFLINE:
                return Tlv.putByte(out, off, tag, allowOffline ? (byte) 1 : (byte) 0);
            case TAG_CURRENCY:
                return Tlv.put(out, off, tag, currency, (short) 0, (short) 2);
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
