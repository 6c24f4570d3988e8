package org.emvtap.applet;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * The Proximity Payment System Environment, "2PAY.SYS.DDF01" (EMV Contactless Book B, 3.3): SELECT
 * answers with the FCI written at personalisation, {@code 6F { 84 DF name, A5 { BF0C { 61 ... } } }},
 * one directory entry per payment application.
 *
 * <p>Personalisation: STORE DATA with DGI 9102 = the whole FCI, then a last block. Afterwards STORE
 * DATA is refused with 6985.
 */
public final class PpseApplet extends Applet implements DgiSink {

    static final short DGI_FCI = (short) 0x9102;
    private static final short MAX_FCI = 256;

    private final byte[] fci;
    private short fciLength;
    private boolean personalised;
    private final StoreDataStream storeData;

    private PpseApplet() {
        fci = new byte[MAX_FCI];
        storeData = new StoreDataStream();
    }

    /** GlobalPlatform INSTALL [for install]: {@code bArray} = Li ‖ instance AID ‖ Lc ‖ C ‖ La ‖ A. */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        PpseApplet applet = new PpseApplet();
        if (bLength > 0 && bArray[bOffset] > 0) {
            applet.register(bArray, (short) (bOffset + 1), bArray[bOffset]);
        } else {
            applet.register();
        }
    }

    public void process(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (selectingApplet()) {
            if (buf[ISO7816.OFFSET_P2] != 0x00) {
                ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND); // no next occurrence
            }
            if (personalised) {
                Util.arrayCopyNonAtomic(fci, (short) 0, buf, (short) 0, fciLength);
                apdu.setOutgoingAndSend((short) 0, fciLength);
            }
            return;
        }
        byte cla = buf[ISO7816.OFFSET_CLA];
        if (buf[ISO7816.OFFSET_INS] != (byte) 0xE2) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        if (cla != (byte) 0x80 && cla != (byte) 0x84) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        if (personalised) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        storeData.process(apdu, this);
    }

    public void storeDgi(short dgi, byte[] buf, short off, short len) {
        if (dgi != DGI_FCI) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (len > MAX_FCI || len < 2 || buf[off] != 0x6F) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        Util.arrayCopy(buf, off, fci, (short) 0, len);
        fciLength = len;
    }

    public void endOfPersonalisation() {
        if (fciLength == 0) {
            ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND); // no FCI was stored
        }
        personalised = true;
    }
}
