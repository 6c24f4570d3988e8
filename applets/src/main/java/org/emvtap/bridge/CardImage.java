package org.emvtap.bridge;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What personalisation writes into one payment applet instance: the host-side mirror of the card
 * profile's application entry (docs/contracts.md), in the card's own data formats.
 */
public final class CardImage {

    /** One record, served byte-identical by READ RECORD (template 70 included). */
    public static final class Record {
        public final int sfi;
        public final int number;
        public final byte[] data;

        public Record(int sfi, int number, byte[] data) {
            this.sfi = sfi;
            this.number = number;
            this.data = data;
        }
    }

    public byte[] aid;
    public byte[] fci;
    public byte[] aip;
    public byte[] afl;
    public byte[] pdol = new byte[0];
    public byte[] cdol1 = new byte[0];
    public byte[] cdol2 = new byte[0];
    public byte[] ddol = new byte[0];
    public byte[] track2;
    public byte[] psn;
    public byte[] ctq;
    public int dki = 1;
    public int cvn = 1;
    public int fddaVersion = 1;
    /** Offline amount limit, minor units (risk DF71 as n12). */
    public long offlineAmountLimit;
    /** Lower consecutive offline limit (9F14). */
    public int consecutiveOfflineLimit;
    /** Application currency code (9F51): offline approvals only in this currency. */
    public byte[] currency = {0x01, 0x56};
    public boolean allowOffline = true;
    /** GET DATA objects (tag → value), in profile order. */
    public final Map<Integer, byte[]> getData = new LinkedHashMap<>();
    /** Initial ATC (GET DATA 9F36 of the profile), null for 0000. */
    public Integer initialAtc;
    public final List<Record> records = new ArrayList<>();
    /** MK-AC ‖ MK-SMI ‖ MK-SMC, 16 bytes each. */
    public byte[] masterKeys;
    /** ICC RSA CRT parts (each modulusBytes / 2 long), null without an ICC key. */
    public RsaCrt rsa;

    /** The CRT form of the ICC private key (PKCS #1: qInv = q^-1 mod p). */
    public static final class RsaCrt {
        public final int modulusBytes;
        public final byte[] p;
        public final byte[] q;
        public final byte[] dp;
        public final byte[] dq;
        public final byte[] qInv;

        public RsaCrt(int modulusBytes, byte[] p, byte[] q, byte[] dp, byte[] dq, byte[] qInv) {
            this.modulusBytes = modulusBytes;
            this.p = p;
            this.q = q;
            this.dp = dp;
            this.dq = dq;
            this.qInv = qInv;
        }
    }

    public int modulusBytes() {
        return rsa == null ? 128 : rsa.modulusBytes;
    }
}
