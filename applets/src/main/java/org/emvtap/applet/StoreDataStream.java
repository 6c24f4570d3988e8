package org.emvtap.applet;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * STORE DATA {@code 80 E2 P1 P2} (GlobalPlatform Card Spec 2.3, 11.11; EMV CPS 1.1, 4.3): the
 * command data of consecutive blocks form one stream of DGIs, {@code DGI (2) ‖ length (1, or FF ‖
 * 2) ‖ value}, and a DGI may span blocks.
 *
 * <ul>
 *   <li>P1 b8: last block (end of personalisation); b7-b6 encryption: only 00 (lab perso in
 *       clear; a production bureau encrypts keys under the DEK of a secure channel); b5-b4 data
 *       structure: 00 or 01 (DGI).</li>
 *   <li>P2: block number, 00 first, +1 per block; out of sequence gives 6A86.</li>
 * </ul>
 *
 * <p>State is transient (CLEAR_ON_DESELECT): one personalisation happens in one selection.
 */
final class StoreDataStream {

    static final short MAX_DGI_LENGTH = 264;

    private static final short S_HEADER_FILL = 0;
    private static final short S_DGI = 1;
    private static final short S_LENGTH = 2;
    private static final short S_VALUE_FILL = 3;
    private static final short S_NEXT_BLOCK = 4;
    private static final short S_IN_VALUE = 5;

    private final byte[] header;
    private final byte[] value;
    private final short[] state;

    StoreDataStream() {
        header = JCSystem.makeTransientByteArray((short) 5, JCSystem.CLEAR_ON_DESELECT);
        value = JCSystem.makeTransientByteArray(MAX_DGI_LENGTH, JCSystem.CLEAR_ON_DESELECT);
        state = JCSystem.makeTransientShortArray((short) 6, JCSystem.CLEAR_ON_DESELECT);
    }

    /** Processes one STORE DATA command, handing complete DGIs to {@code sink}. */
    void process(APDU apdu, DgiSink sink) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        if ((p1 & 0x60) != 0 || (p1 & 0x18) == 0x10 || (p1 & 0x18) == 0x18) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if ((byte) state[S_NEXT_BLOCK] != buf[ISO7816.OFFSET_P2]) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short lc = apdu.setIncomingAndReceive();
        if (lc != apdu.getIncomingLength()) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short p = ISO7816.OFFSET_CDATA;
        short end = (short) (p + lc);
        while (p < end) {
            if (state[S_IN_VALUE] == 0) {
                // collect the DGI header: 2 bytes DGI, then 1 length byte or FF ‖ 2 bytes
                header[state[S_HEADER_FILL]] = buf[p++];
                state[S_HEADER_FILL]++;
                short fill = state[S_HEADER_FILL];
                if (fill == 3 && header[2] != (byte) 0xFF) {
                    startValue(Util.getShort(header, (short) 0), (short) (header[2] & 0xFF));
                } else if (fill == 5) {
                    startValue(Util.getShort(header, (short) 0), Util.getShort(header, (short) 3));
                }
            } else {
                short want = (short) (state[S_LENGTH] - state[S_VALUE_FILL]);
                short have = (short) (end - p);
                short n = want < have ? want : have;
                Util.arrayCopyNonAtomic(buf, p, value, state[S_VALUE_FILL], n);
                p = (short) (p + n);
                state[S_VALUE_FILL] = (short) (state[S_VALUE_FILL] + n);
            }
            if (state[S_IN_VALUE] != 0 && state[S_VALUE_FILL] == state[S_LENGTH]) {
                sink.storeDgi(state[S_DGI], value, (short) 0, state[S_LENGTH]);
                state[S_IN_VALUE] = 0;
                state[S_HEADER_FILL] = 0;
            }
        }
        state[S_NEXT_BLOCK] = (short) ((state[S_NEXT_BLOCK] + 1) & 0xFF);
        if ((p1 & (byte) 0x80) != 0) {
            if (state[S_IN_VALUE] != 0 || state[S_HEADER_FILL] != 0) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH); // last block ends inside a DGI
            }
            sink.endOfPersonalisation();
        }
    }

    private void startValue(short dgi, short len) {
        if (len < 0 || len > MAX_DGI_LENGTH) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        state[S_DGI] = dgi;
        state[S_LENGTH] = len;
        state[S_VALUE_FILL] = 0;
        state[S_IN_VALUE] = 1;
    }
}
