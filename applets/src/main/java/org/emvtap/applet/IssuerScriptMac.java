package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacard.security.DESKey;

/**
 * Secure messaging for integrity of issuer script commands (EMV 4.4 Book 2, 9.2.1; Book 3, 6.5):
 * the last 4 bytes of the command data are a MAC over
 * {@code CLA ‖ INS ‖ P1 ‖ P2 ‖ Lc (MAC included) ‖ ATC ‖ AC ‖ command data (MAC excluded)},
 * ISO 9797-1 alg 3 with padding method 2, keyed with the PBOC session key derived from the SMI
 * master key with that ATC.
 *
 * <p>The ATC and AC are those of the online transaction the issuer answered. In the qPBOC quick
 * path the script comes back on a later tap, so the card tries the two online cryptograms it
 * remembers ({@link TransactionCounter}), newest first.
 */
final class IssuerScriptMac {

    static final short MAC_LENGTH = 4;

    private final PbocCrypto crypto;
    private final TransactionCounter counter;
    private final byte[] mac;

    IssuerScriptMac(PbocCrypto crypto, TransactionCounter counter, byte[] scratch) {
        this.crypto = crypto;
        this.counter = counter;
        this.mac = scratch;
    }

    /**
     * Verifies the MAC of the script command in {@code buf} (header at 0, data at 5, {@code lc}
     * bytes); returns the length of the command data without the MAC, or -1 when the MAC does
     * not verify. 6700 when there is no room for a MAC.
     */
    short check(DESKey smiMasterKey, byte[] buf, short lc) {
        if (lc < MAC_LENGTH || !smiMasterKey.isInitialized()) {
            ISOException.throwIt(lc < MAC_LENGTH ? ISO7816.SW_WRONG_LENGTH
                    : ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short dataLen = (short) (lc - MAC_LENGTH);
        short macOff = (short) (ISO7816.OFFSET_CDATA + dataLen);
        byte[] slots = counter.slots();
        for (short slot = 0; slot < 2; slot++) {
            if (!counter.slotUsed(slot)) {
                continue;
            }
            short s = (short) (slot * TransactionCounter.SLOT_LENGTH);
            crypto.deriveSessionKey(smiMasterKey, Util.getShort(slots, s));
            crypto.macBegin();
            crypto.macUpdate(buf, (short) 0, (short) 5);
            crypto.macUpdate(slots, s, TransactionCounter.SLOT_LENGTH);
            crypto.macFinish(buf, ISO7816.OFFSET_CDATA, dataLen, mac, (short) 0);
            if (PbocCrypto.macEquals(mac, (short) 0, buf, macOff, MAC_LENGTH)) {
                return dataLen;
            }
        }
        return Tlv.NOT_FOUND;
    }
}
