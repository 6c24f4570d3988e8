package org.emvtap.applet;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;
import javacard.security.KeyBuilder;
import javacard.security.MessageDigest;
import javacard.security.RSAPrivateCrtKey;
import javacardx.crypto.Cipher;

/**
 * Signed Dynamic Application Data, tag 9F4B (EMV 4.4 Book 2, 6.5 DDA, 6.6 CDA; C-3/C-7 fDDA).
 *
 * <p>The block signed is {@code 6A ‖ 05 ‖ 01 ‖ L_DD ‖ ICC dynamic data ‖ BB pad ‖ H ‖ BC}, N_IC
 * bytes, where H = SHA-1(05 ‖ 01 ‖ L_DD ‖ ICC dynamic data ‖ pad ‖ terminal dynamic data). The
 * ICC private key signs it with the raw RSA operation (Cipher ALG_RSA_NOPAD, CRT key): EMV's
 * "signature" is the private-key transform of a block that is already fully formatted.
 *
 * <p>The CRT key is allocated at install with the modulus length from the install parameters and
 * filled at personalisation (DGIs 8201-8205, EMV CPS).
 */
final class DynamicSignature {

    static final short HASH_LENGTH = 20;
    private static final byte FORMAT_SDAD = 0x05;
    private static final byte HASH_SHA1 = 0x01;

    private final RSAPrivateCrtKey key;
    private final Cipher rsa;
    private final MessageDigest sha1;
    private final short modulusLength;

    DynamicSignature(short modulusBytes) {
        modulusLength = modulusBytes;
        key = (RSAPrivateCrtKey) KeyBuilder.buildKey(KeyBuilder.TYPE_RSA_CRT_PRIVATE,
                (short) (modulusBytes * 8), false);
        rsa = Cipher.getInstance(Cipher.ALG_RSA_NOPAD, false);
        sha1 = MessageDigest.getInstance(MessageDigest.ALG_SHA, false);
    }

    /** N_IC in bytes. */
    short modulusLength() {
        return modulusLength;
    }

    boolean ready() {
        return key.isInitialized();
    }

    /** Personalisation of one CRT component (EMV CPS DGI 8201 qInv .. 8205 p). */
    void setComponent(short dgi, byte[] buf, short off, short len) {
        if (len != (short) (modulusLength / 2)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        switch (dgi) {
            case (short) 0x8201: key.setPQ(buf, off, len); break;
            case (short) 0x8202: key.setDQ1(buf, off, len); break;
            case (short) 0x8203: key.setDP1(buf, off, len); break;
            case (short) 0x8204: key.setQ(buf, off, len); break;
            case (short) 0x8205: key.setP(buf, off, len); break;
            default: ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
    }

    /**
     * Builds and signs the SDAD into {@code out} (N_IC bytes), using {@code work} (N_IC bytes)
     * for the block. Returns N_IC. 6985 when the key is not personalised.
     */
    short sign(byte[] iccDynamicData, short ddOff, short ddLen,
               byte[] terminalData, short tdOff, short tdLen,
               byte[] work, short workOff, byte[] out, short outOff) {
        if (!key.isInitialized()) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short padLen = (short) (modulusLength - ddLen - 25);
        if (padLen < 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short p = workOff;
        work[p++] = 0x6A;
        work[p++] = FORMAT_SDAD;
        work[p++] = HASH_SHA1;
        work[p++] = (byte) ddLen;
        p = Util.arrayCopyNonAtomic(iccDynamicData, ddOff, work, p, ddLen);
        p = Util.arrayFillNonAtomic(work, p, padLen, (byte) 0xBB);
        sha1.reset();
        sha1.update(work, (short) (workOff + 1), (short) (p - workOff - 1));
        sha1.doFinal(terminalData, tdOff, tdLen, work, p);
        p = (short) (p + HASH_LENGTH);
        work[p] = (byte) 0xBC;
        // the private-key transform m^d mod n: MODE_DECRYPT with the private key, the usual form
        // on cards (and the one jcardsim takes for a full-length input)
        rsa.init(key, Cipher.MODE_DECRYPT);
        short n = rsa.doFinal(work, workOff, modulusLength, out, outOff);
        if (n < modulusLength) {
            // a result with leading zero bytes may come back short: right-align it
            short shift = (short) (modulusLength - n);
            Util.arrayCopyNonAtomic(out, outOff, out, (short) (outOff + shift), n);
            Util.arrayFillNonAtomic(out, outOff, shift, (byte) 0);
        }
        return modulusLength;
    }

    /** SHA-1 helper for the CDA Transaction Data Hash Code (Book 2, 6.6.1). */
    MessageDigest digest() {
        return sha1;
    }
}
