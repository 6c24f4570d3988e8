package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import javacard.security.DESKey;
import javacard.security.KeyBuilder;
import org.junit.jupiter.api.Test;

/**
 * The public PBOC example (tests/data/vectors/public.json, id pboc_unionpay_cvn01): ICC MK
 * 014C986E..., ATC 0240 → SK D5102625...; the 37 data bytes → ARQC 5D016C91005E7CC2; ARC 3031 →
 * ARPC 21415243527CE78F. Checked twice: with the host's JDK DES (independent of the applet) and
 * with the applet's own {@link PbocCrypto} on the jcardsim Java Card API.
 */
class PbocVectorTest {

    static final byte[] ICC_MK = Host.hex("014C986ECD8F49157CC8B59E3BCDFD98");
    static final int ATC = 0x0240;
    static final byte[] SK = Host.hex("D5102625E6E5AD329E54ABB50BF23DA8");
    static final byte[] DATA = Host.hex("000000000001000000000000015600800460000156140701001E78EEBC7D00024003A04002");
    static final byte[] ARQC = Host.hex("5D016C91005E7CC2");
    static final byte[] ARC = Host.hex("3031");
    static final byte[] ARPC = Host.hex("21415243527CE78F");

    @Test
    void sessionKeyIsTripleDesOfAtcAndItsComplementUnderTheCardMasterKey() throws Exception {
        // the published SK has its DES parity bits adjusted; DES ignores them
        assertArrayEquals(withoutParity(SK), withoutParity(Host.pbocSessionKey(ICC_MK, ATC)));
    }

    static byte[] withoutParity(byte[] key) {
        byte[] out = key.clone();
        for (int i = 0; i < out.length; i++) {
            out[i] &= (byte) 0xFE;
        }
        return out;
    }

    @Test
    void arqcIsRetailMacMethod2UnderTheSessionKey() throws Exception {
        assertArrayEquals(ARQC, Host.retailMac(SK, DATA));
    }

    @Test
    void arpcMethod1IsTripleDesOfArqcXorArc() throws Exception {
        assertArrayEquals(ARPC, Host.arpcMethod1(SK, ARQC, ARC));
    }

    @Test
    void appletCryptoDerivesTheSessionKeyOnCardAndComputesTheVectorArqc() {
        DESKey mk = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        mk.setKey(ICC_MK, (short) 0);
        PbocCrypto crypto = new PbocCrypto();
        crypto.deriveSessionKey(mk, (short) ATC);
        crypto.macBegin();
        byte[] mac = new byte[8];
        crypto.macFinish(DATA, (short) 0, (short) DATA.length, mac, (short) 0);
        assertArrayEquals(ARQC, mac);
        byte[] arpc = new byte[8];
        crypto.arpcMethod1(ARQC, (short) 0, ARC, (short) 0, arpc, (short) 0);
        assertArrayEquals(ARPC, arpc);
    }
}
