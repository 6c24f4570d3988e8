package org.emvtap.applet;

/** Receives the Data Grouping Identifiers of a personalisation (GlobalPlatform STORE DATA). */
interface DgiSink {

    /** One complete DGI with its value in {@code buf[off, off+len)}. */
    void storeDgi(short dgi, byte[] buf, short off, short len);

    /** The last STORE DATA block has been processed: leave the personalisation state. */
    void endOfPersonalisation();
}
