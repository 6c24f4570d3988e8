package org.emvtap.applet;

import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.DESKey;
import javacard.security.KeyBuilder;
import javacard.security.Signature;
import javacardx.crypto.Cipher;

/**
 * The PBOC symmetric cryptography of the card, with the master keys kept on the card.
 *
 * <ul>
 *   <li>Session key (JR/T 0025 / UnionPay CVN 01): SK = 3DES_MK(00..00 ‖ ATC) ‖
 *       3DES_MK(00..00 ‖ ATC ⊕ FFFF), derived here from the card master key, never stored.</li>
 *   <li>Application cryptogram and script MAC: ISO 9797-1 MAC algorithm 3 (retail MAC) with
 *       padding method 2 (EMV 4.4 Book 2, A1.2.1), keyed with the session key.</li>
 *   <li>ARPC method 1 (Book 2, 8.2.1): 3DES_SK(ARQC ⊕ (ARC ‖ 00..00)).</li>
 * </ul>
 */
final class PbocCrypto {

    static final short MAC_LENGTH = 8;

    private final Cipher desEcb;
    private final Signature retailMac;
    private final DESKey sessionKey;
    private final byte[] block;

    PbocCrypto() {
        desEcb = Cipher.getInstance(Cipher.ALG_DES_ECB_NOPAD, false);
        retailMac = Signature.getInstance(Signature.ALG_DES_MAC8_ISO9797_1_M2_ALG3, false);
        sessionKey = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES_TRANSIENT_DESELECT,
                KeyBuilder.LENGTH_DES3_2KEY, false);
        block = JCSystem.makeTransientByteArray((short) 16, JCSystem.CLEAR_ON_DESELECT);
    }

    /**
     * Derives the PBOC session key for {@code atc} from {@code masterKey} into the transient
     * session key (JR/T 0025.7; docs/emv-notes.md, Cryptogram versions).
     */
    void deriveSessionKey(DESKey masterKey, short atc) {
        Util.arrayFillNonAtomic(block, (short) 0, (short) 16, (byte) 0);
        Util.setShort(block, (short) 6, atc);
        Util.setShort(block, (short) 14, (short) (atc ^ (short) 0xFFFF));
        desEcb.init(masterKey, Cipher.MODE_ENCRYPT);
        desEcb.doFinal(block, (short) 0, (short) 16, block, (short) 0);
        sessionKey.setKey(block, (short) 0);
        Util.arrayFillNonAtomic(block, (short) 0, (short) 16, (byte) 0);
    }

    /** Starts a retail MAC under the current session key. */
    void macBegin() {
        retailMac.init(sessionKey, Signature.MODE_SIGN);
    }

    void macUpdate(byte[] in, short off, short len) {
        retailMac.update(in, off, len);
    }

    /** Finishes the MAC (method 2 padding added here) and writes its 8 bytes at {@code out}. */
    short macFinish(byte[] in, short off, short len, byte[] out, short outOff) {
        return retailMac.sign(in, off, len, out, outOff);
    }

    /**
     * Compares the first {@code macLen} bytes of the MAC just finished into {@code computed}
     * with {@code expected}, in time that does not depend on where they differ.
     */
    static boolean macEquals(byte[] computed, short cOff, byte[] expected, short eOff, short macLen) {
        byte diff = 0;
        for (short i = 0; i < macLen; i++) {
            diff |= (byte) (computed[(short) (cOff + i)] ^ expected[(short) (eOff + i)]);
        }
        return diff == 0;
    }

    /**
     * ARPC method 1 (Book 2, 8.2.1) under the session key: 3DES(ARQC ⊕ (ARC ‖ 00 × 6)), written
     * at {@code out} (8 bytes).
     */
    void arpcMethod1(byte[] arqc, short arqcOff, byte[] arc, short arcOff, byte[] out, short outOff) {
        Util.arrayCopyNonAtomic(arqc, arqcOff, block, (short) 0, (short) 8);
        block[0] ^= arc[arcOff];
        block[1] ^= arc[(short) (arcOff + 1)];
        desEcb.init(sessionKey, Cipher.MODE_ENCRYPT);
        desEcb.doFinal(block, (short) 0, (short) 8, out, outOff);
    }
}
