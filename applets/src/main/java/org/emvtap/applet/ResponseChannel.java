package org.emvtap.applet;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;

/**
 * Sends response data built in a transient buffer. A short APDU carries at most 256 response
 * bytes; a longer response (a GPO with a large fDDA signature) is sent in parts: the first 256
 * with SW 61xx, the rest on GET RESPONSE {@code 00 C0 00 00 Le} (ISO/IEC 7816-4, 7.6.1; EMV 4.4
 * Book 1, 9.3.1.3). Pending data are dropped by any other command.
 */
final class ResponseChannel {

    static final short BUFFER_SIZE = 400;
    private static final short MAX_SHORT_RESPONSE = 256;
    private static final short P_OFFSET = 0;
    private static final short P_REMAINING = 1;

    private final byte[] out;
    private final short[] pending;

    ResponseChannel() {
        out = JCSystem.makeTransientByteArray(BUFFER_SIZE, JCSystem.CLEAR_ON_DESELECT);
        pending = JCSystem.makeTransientShortArray((short) 2, JCSystem.CLEAR_ON_DESELECT);
    }

    byte[] buffer() {
        return out;
    }

    /** Forgets a response not fetched with GET RESPONSE. */
    void clear() {
        pending[P_REMAINING] = 0;
    }

    /** Sends {@code out[off, off+len)}. */
    void send(APDU apdu, short off, short len) {
        short part = len > MAX_SHORT_RESPONSE ? MAX_SHORT_RESPONSE : len;
        apdu.setOutgoing();
        apdu.setOutgoingLength(part);
        apdu.sendBytesLong(out, off, part);
        short remaining = (short) (len - part);
        if (remaining > 0) {
            pending[P_OFFSET] = (short) (off + part);
            pending[P_REMAINING] = remaining;
            ISOException.throwIt((short) (Sw.BYTES_REMAINING
                    | (remaining >= MAX_SHORT_RESPONSE ? 0 : remaining)));
        }
        pending[P_REMAINING] = 0;
    }

    /** GET RESPONSE: the next part of the pending response; 6985 if there is none. */
    void getResponse(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short remaining = pending[P_REMAINING];
        if (remaining == 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        pending[P_REMAINING] = 0;
        send(apdu, pending[P_OFFSET], remaining);
    }
}
