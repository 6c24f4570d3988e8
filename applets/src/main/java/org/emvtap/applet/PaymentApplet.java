package org.emvtap.applet;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.DESKey;
import javacard.security.KeyBuilder;
import javacard.security.RandomData;

/**
 * UnionPay QuickPass payment application (qPBOC, EMV Contactless Book C-7 / JR/T 0025) with the
 * contact-style full path beside it.
 *
 * <table>
 *   <caption>Commands</caption>
 *   <tr><td>00 A4 04 00</td><td>SELECT: FCI from perso; 6283 with the FCI when blocked</td></tr>
 *   <tr><td>80 A8 00 00</td><td>GET PROCESSING OPTIONS (Book 3, 6.5.8): qPBOC decision + AC + fDDA</td></tr>
 *   <tr><td>00 B2 rr (sfi&lt;&lt;3|4)</td><td>READ RECORD (Book 3, 6.5.11)</td></tr>
 *   <tr><td>80 CA tag</td><td>GET DATA (Book 3, 6.5.7): 9F36, 9F13, perso'd objects, risk data</td></tr>
 *   <tr><td>80 AE P1 00</td><td>GENERATE AC (Book 3, 6.5.5), CDA when P1 b5</td></tr>
 *   <tr><td>00 88 00 00</td><td>INTERNAL AUTHENTICATE (Book 3, 6.5.9): DDA</td></tr>
 *   <tr><td>00 82 00 00</td><td>EXTERNAL AUTHENTICATE (Book 3, 6.5.4): ARPC of the last ARQC</td></tr>
 *   <tr><td>84 1E / 84 18 / 04 DA</td><td>APPLICATION BLOCK / UNBLOCK / PUT DATA with script MAC (Book 3, 6.5.1-2)</td></tr>
 *   <tr><td>80 E2</td><td>STORE DATA personalisation (see {@link StoreDataStream}); 6985 once personalised</td></tr>
 *   <tr><td>00 C0</td><td>GET RESPONSE for answers over 256 bytes</td></tr>
 * </table>
 *
 * <p>Install parameters (GlobalPlatform application-specific, optionally inside C9): two bytes,
 * the ICC RSA modulus length in bytes (default 0080 = 1024 bits). Keys are allocated at install;
 * nothing is allocated afterwards.
 */
@SuppressWarnings("deprecation") // RandomData.ALG_SECURE_RANDOM, generateData: 3.0.4 has no ALG_TRNG, nextBytes
public final class PaymentApplet extends Applet implements DgiSink {

    // Personalisation DGIs (EMV CPS 1.1 where it has one; B0xx are emvtap's own, see README)
    static final short DGI_FCI = (short) 0x9102;
    static final short DGI_AIP_AFL = (short) 0x9104;
    static final short DGI_DES_KEYS = (short) 0x8000;
    static final short DGI_RSA_FIRST = (short) 0x8201;
    static final short DGI_RSA_LAST = (short) 0x8205;
    static final short DGI_DOLS = (short) 0xB001;
    static final short DGI_CARD_DATA = (short) 0xB002;
    static final short DGI_RISK = (short) 0xB003;
    static final short DGI_GET_DATA = (short) 0xB004;
    static final short DGI_INITIAL_ATC = (short) 0xB005;

    static final short TAG_FCI = 0x6F;
    static final short TAG_AIP = 0x82;
    static final short TAG_AFL = 0x94;
    static final short TAG_PDOL = (short) 0x9F38;
    static final short TAG_CDOL1 = 0x8C;
    static final short TAG_CDOL2 = 0x8D;
    static final short TAG_DDOL = (short) 0x9F49;
    static final short TAG_TRACK2 = 0x57;
    static final short TAG_PSN = 0x5F34;
    static final short TAG_CTQ = (short) 0x9F6C;
    static final short TAG_DKI = (short) 0xDF10;
    static final short TAG_CVN = (short) 0xDF11;
    static final short TAG_FDDA_VERSION = (short) 0xDF12;
    static final short TAG_ATC = (short) 0x9F36;
    static final short TAG_LAST_ONLINE_ATC = (short) 0x9F13;
    static final short TAG_CARD_AUTH_DATA = (short) 0x9F69;
    static final short TAG_TTQ = (short) 0x9F66;

    private static final short DEFAULT_MODULUS_BYTES = 128;
    private static final short POOL_SIZE = 3072;
    private static final short DOL_DATA_MAX = 128;
    /** Response templates are built from here, their 77 header written in front afterwards. */
    private static final short TEMPLATE_HEADROOM = 4;
    private static final short SCRATCH_SIZE = 128;
    /** INTERNAL AUTHENTICATE: DDOL data in scratch[0, 112), ICC dynamic data from here. */
    private static final short DDA_DYNAMIC_DATA = 112;
    private static final short DDOL_DATA_MAX = 112;

    // session states (transient)
    private static final short ST_SELECTED = 0;
    private static final short ST_QUICK_DONE = 1;
    private static final short ST_FULL_GPO = 2;
    private static final short ST_FIRST_AC = 3;
    private static final short ST_SECOND_AC = 4;
    // session[] indexes
    private static final short S_STATE = 0;
    private static final short S_ATC = 1;
    private static final short S_PDOL_LEN = 2;
    private static final short S_CDOL1_LEN = 3;
    private static final short S_FIRST_CID = 4;
    private static final short S_EXTERNAL_AUTH_DONE = 5;
    private static final short S_DDA_DONE = 6;
    // issuer authentication results (session[S_EXTERNAL_AUTH_DONE]; 0: not performed)
    private static final short AUTH_VALID = 1;
    private static final short AUTH_DECLINED = 2;
    private static final short AUTH_FAILED = 3;

    // AIP byte 1 (Book 3 Annex C1): b6 DDA supported, b1 CDA supported
    private static final byte AIP1_DDA = 0x20;
    private static final byte AIP1_CDA = 0x01;
    // TTQ byte 1 b6: qPBOC supported (Book C-7, TTQ)
    private static final byte TTQ1_QPBOC = 0x20;

    private final ObjectStore store;
    private final DESKey acKey;
    private final DESKey smiKey;
    private final DESKey smcKey;
    private final PbocCrypto crypto;
    private final ApplicationCryptogram cryptogram;
    private final DynamicSignature signer;
    private final TransactionCounter counter;
    private final CardRiskManagement risk;
    private final IssuerScriptMac scriptMac;
    private final StoreDataStream storeData;
    private final ResponseChannel response;
    private final RandomData random;

    private boolean personalised;
    private boolean blocked;
    private byte fddaVersion;

    private final short[] session;
    private final byte[] ac;
    private final byte[] cvr;
    private final byte[] cardUn;
    /** CVR bytes 3-4 as they stood before this transaction (see CardRiskManagement). */
    private final byte[] cvrBefore;
    private final byte[] ctq;
    private final byte[] idn;
    private final byte[] pdolData;
    private final byte[] cdol1Data;
    private final byte[] scratch;
    private final byte[] work;

    private PaymentApplet(short modulusBytes) {
        store = new ObjectStore(POOL_SIZE);
        acKey = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        smiKey = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        smcKey = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
        crypto = new PbocCrypto();
        cryptogram = new ApplicationCryptogram(crypto);
        signer = new DynamicSignature(modulusBytes);
        counter = new TransactionCounter();
        risk = new CardRiskManagement();
        scratch = JCSystem.makeTransientByteArray(SCRATCH_SIZE, JCSystem.CLEAR_ON_DESELECT);
        scriptMac = new IssuerScriptMac(crypto, counter, scratch);
        storeData = new StoreDataStream();
        response = new ResponseChannel();
        random = RandomData.getInstance(RandomData.ALG_SECURE_RANDOM);
        session = JCSystem.makeTransientShortArray((short) 7, JCSystem.CLEAR_ON_DESELECT);
        ac = JCSystem.makeTransientByteArray(ApplicationCryptogram.AC_LENGTH, JCSystem.CLEAR_ON_DESELECT);
        cvr = JCSystem.makeTransientByteArray(ApplicationCryptogram.CVR_LENGTH, JCSystem.CLEAR_ON_DESELECT);
        cardUn = JCSystem.makeTransientByteArray((short) 4, JCSystem.CLEAR_ON_DESELECT);
        ctq = JCSystem.makeTransientByteArray((short) 2, JCSystem.CLEAR_ON_DESELECT);
        cvrBefore = JCSystem.makeTransientByteArray((short) 2, JCSystem.CLEAR_ON_DESELECT);
        idn = JCSystem.makeTransientByteArray((short) 8, JCSystem.CLEAR_ON_DESELECT);
        pdolData = JCSystem.makeTransientByteArray(DOL_DATA_MAX, JCSystem.CLEAR_ON_DESELECT);
        cdol1Data = JCSystem.makeTransientByteArray(DOL_DATA_MAX, JCSystem.CLEAR_ON_DESELECT);
        work = JCSystem.makeTransientByteArray((short) 256, JCSystem.CLEAR_ON_DESELECT);
    }

    /**
     * GlobalPlatform INSTALL [for install]: {@code bArray} = Li ‖ instance AID ‖ Lc ‖ control ‖
     * La ‖ application parameters (two bytes N_IC, bare or as C9 02 xx xx).
     */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        short modulusBytes = DEFAULT_MODULUS_BYTES;
        short aidLen = 0;
        if (bLength > 0) {
            aidLen = bArray[bOffset];
            short p = (short) (bOffset + 1 + aidLen);
            short end = (short) (bOffset + bLength);
            if (p < end) {
                p = (short) (p + 1 + bArray[p]); // skip control info
            }
            if (p < end) {
                short la = (short) (bArray[p] & 0xFF);
                p++;
                if (la >= 4 && bArray[p] == (byte) 0xC9) {
                    p = (short) (p + 2);
                    la = (short) (la - 2);
                }
                if (la >= 2) {
                    modulusBytes = Util.getShort(bArray, p);
                }
            }
        }
        if (modulusBytes < 64 || modulusBytes > 256) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        PaymentApplet applet = new PaymentApplet(modulusBytes);
        if (aidLen > 0) {
            applet.register(bArray, (short) (bOffset + 1), (byte) aidLen);
        } else {
            applet.register();
        }
    }

    public void process(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte ins = buf[ISO7816.OFFSET_INS];
        if (ins != (byte) 0xC0) {
            response.clear();
        }
        if (selectingApplet()) {
            select(apdu);
            return;
        }
        byte cla = buf[ISO7816.OFFSET_CLA];
        switch (ins) {
            case (byte) 0xE2:
                requireCla(cla, (byte) 0x80, (byte) 0x84);
                if (personalised) {
                    ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
                }
                storeData.process(apdu, this);
                return;
            case (byte) 0xC0:
                requireCla(cla, (byte) 0x00, (byte) 0x00);
                response.getResponse(apdu);
                return;
            default:
                break;
        }
        if (!personalised) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        switch (ins) {
            case (byte) 0xA8:
                requireCla(cla, (byte) 0x80, (byte) 0x80);
                getProcessingOptions(apdu);
                return;
            case (byte) 0xB2:
                requireCla(cla, (byte) 0x00, (byte) 0x00);
                readRecord(apdu);
                return;
            case (byte) 0xCA:
                requireCla(cla, (byte) 0x80, (byte) 0x80);
                getData(apdu);
                return;
            case (byte) 0xAE:
                requireCla(cla, (byte) 0x80, (byte) 0x80);
                generateAc(apdu);
                return;
            case (byte) 0x88:
                requireCla(cla, (byte) 0x00, (byte) 0x00);
                internalAuthenticate(apdu);
                return;
            case (byte) 0x82:
                requireCla(cla, (byte) 0x00, (byte) 0x00);
                externalAuthenticate(apdu);
                return;
            case (byte) 0x1E:
                requireCla(cla, (byte) 0x84, (byte) 0x84);
                applicationBlock(apdu, true);
                return;
            case (byte) 0x18:
                requireCla(cla, (byte) 0x84, (byte) 0x84);
                applicationBlock(apdu, false);
                return;
            case (byte) 0xDA:
                requireCla(cla, (byte) 0x04, (byte) 0x84);
                putData(apdu);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private static void requireCla(byte cla, byte a, byte b) {
        if (cla != a && cla != b) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
    }

    private static void requireP1P2Zero(byte[] buf) {
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
    }

    private static short receive(APDU apdu) {
        short lc = apdu.setIncomingAndReceive();
        if (lc != apdu.getIncomingLength()) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        return lc;
    }

    // ---------------------------------------------------------------- SELECT (Book 1, 11.3)

    private void select(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_P2] != 0x00) {
            ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND); // one occurrence only
        }
        session[S_STATE] = ST_SELECTED;
        if (!personalised) {
            return; // 9000, no FCI: ready for STORE DATA
        }
        short len = copyObject(TAG_FCI, response.buffer(), (short) 0);
        response.send(apdu, (short) 0, len);
        if (blocked) {
            ISOException.throwIt(Sw.SELECTED_FILE_INVALIDATED); // FCI kept, SW 6283 (Book 1, 12.3.3)
        }
    }

    private short copyObject(short key, byte[] out, short off) {
        short len = store.length(key);
        Util.arrayCopyNonAtomic(store.pool(), store.offset(key), out, off, len);
        return len;
    }

    // ------------------------------------------------- GET PROCESSING OPTIONS (Book 3, 6.5.8)

    /**
     * GPO: checks the PDOL data (6700 on a length mismatch), increments the ATC, then either the
     * qPBOC quick path (TTQ byte 1 b6: card risk management, the cryptogram and, for a TC, the
     * fDDA signature, all in template 77) or the full path (77 with AIP and AFL only; GENERATE AC
     * follows).
     */
    private void getProcessingOptions(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        short lc = receive(apdu);
        if (lc == 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        // the data field is exactly one TLV, tag 83 (Book 3, 6.5.8.3)
        short cdata = ISO7816.OFFSET_CDATA;
        if (buf[cdata] != (byte) 0x83 || lc < 2 || Tlv.lengthSize(buf, (short) (cdata + 1)) > 2
                || Tlv.next(buf, cdata) != (short) (cdata + lc)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        short dataOff = Tlv.valueOffset(buf, cdata);
        short dataLen = Tlv.valueLength(buf, cdata);
        short pdolOff = store.offset(TAG_PDOL);
        short pdolLen = store.length(TAG_PDOL);
        byte[] pool = store.pool();
        if (dataLen != (pdolOff == Tlv.NOT_FOUND ? 0 : Dol.dataLength(pool, pdolOff, pdolLen))) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (blocked || session[S_STATE] != ST_SELECTED) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        Util.arrayCopyNonAtomic(buf, dataOff, pdolData, (short) 0, dataLen);
        session[S_PDOL_LEN] = dataLen;

        boolean newCard = counter.lastOnlineAtc() == 0;  // no online transaction yet (CVR byte 3 b5)
        short atc = counter.next(); // persisted before any cryptogram leaves the card
        session[S_ATC] = atc;
        random.generateData(cardUn, (short) 0, (short) 4);
        Util.arrayCopyNonAtomic(pool, store.offset(TAG_CTQ), ctq, (short) 0, (short) 2);

        // scratch: TTQ [0,4), amount 9F02 [4,10), currency 5F2A [10,12)
        Dol.copyValue(pool, pdolOff, pdolLen, TAG_TTQ, pdolData, (short) 0, scratch, (short) 0, (short) 4);
        Dol.copyValue(pool, pdolOff, pdolLen, (short) 0x9F02, pdolData, (short) 0, scratch, (short) 4, (short) 6);
        Dol.copyValue(pool, pdolOff, pdolLen, (short) 0x5F2A, pdolData, (short) 0, scratch, (short) 10, (short) 2);
        byte[] out = response.buffer();
        short p = TEMPLATE_HEADROOM; // room for 77 82 L L
        p = Tlv.put(out, p, TAG_AIP, pool, store.offset(TAG_AIP), store.length(TAG_AIP));
        p = Tlv.put(out, p, TAG_AFL, pool, store.offset(TAG_AFL), store.length(TAG_AFL));
        risk.startTransaction(cvrBefore, (short) 0, newCard);
        if ((scratch[0] & TTQ1_QPBOC) == 0) {
            session[S_STATE] = ST_FULL_GPO;
            sendTemplate77(apdu, p);
            return;
        }
        session[S_STATE] = ST_QUICK_DONE;
        byte cid = risk.decideQuickPath(scratch, (short) 0, scratch, (short) 4, scratch, (short) 10,
                ctq, (short) 0);
        boolean signs = cid == CardRiskManagement.CID_TC && signer.ready();
        boolean velocity = cid != CardRiskManagement.CID_TC && risk.velocityExceeded();
        CardRiskManagement.buildCvr(cvr, (short) 0, ApplicationCryptogram.CVR2_SECOND_NOT_REQUESTED, cid,
                cvrBefore, (short) 0, velocity, signs);
        cryptogram.generate(acKey, pool, pdolOff, pdolLen, pdolData, (short) 0,
                pool, store.offset(TAG_AIP), atc, cvr, (short) 0, ac, (short) 0);
        recordCryptogram(cid, false);

        p = Tlv.putShort(out, p, TAG_ATC, atc);
        p = Tlv.put(out, p, (short) 0x9F26, ac, (short) 0, ApplicationCryptogram.AC_LENGTH);
        p = Tlv.putByte(out, p, (short) 0x9F27, cid);
        p = cryptogram.putIad(out, p, cvr, (short) 0);
        p = Tlv.put(out, p, TAG_TRACK2, pool, store.offset(TAG_TRACK2), store.length(TAG_TRACK2));
        if (store.has(TAG_PSN)) {
            p = Tlv.put(out, p, TAG_PSN, pool, store.offset(TAG_PSN), store.length(TAG_PSN));
        }
        p = Tlv.put(out, p, TAG_CTQ, ctq, (short) 0, (short) 2);
        if (signs) {
            p = putFddaSignature(out, p, pool, pdolOff, pdolLen, atc);
        }
        sendTemplate77(apdu, p);
    }

    /** Wraps {@code out[TEMPLATE_HEADROOM, end)} in template 77 and sends it. */
    private void sendTemplate77(APDU apdu, short end) {
        byte[] out = response.buffer();
        short len = (short) (end - TEMPLATE_HEADROOM);
        short start = len < 0x80 ? (short) 2 : (len < 0x100 ? (short) 1 : (short) 0);
        short q = Tlv.putTag(out, start, (short) 0x77);
        Tlv.putLength(out, q, len);
        response.send(apdu, start, (short) (end - start));
    }

    private void recordCryptogram(byte cid, boolean fullPath) {
        risk.recordOutcome(cid, fullPath);
        if (cid == CardRiskManagement.CID_ARQC) {
            counter.recordOnline(session[S_ATC], ac, (short) 0);
            if (!fullPath) {
                counter.setLastOnlineAtc(session[S_ATC]); // the full path waits for the issuer's answer
            }
        }
    }

    /**
     * fDDA (C-3/C-7 fDDA; EMV 4.4 Book 2, 6.5): SDAD over ICC dynamic data {@code 02 ‖ ATC} and
     * terminal data 9F37 ‖ 9F02 ‖ 5F2A ‖ 9F69 (version 01), or 9F37 alone (version 00).
     */
    private short putFddaSignature(byte[] out, short p, byte[] pool, short pdolOff, short pdolLen, short atc) {
        short t = 0;
        t = Dol.copyValue(pool, pdolOff, pdolLen, (short) 0x9F37, pdolData, (short) 0, scratch, t, (short) 4);
        if (fddaVersion != 0) {
            t = Dol.copyValue(pool, pdolOff, pdolLen, (short) 0x9F02, pdolData, (short) 0, scratch, t, (short) 6);
            t = Dol.copyValue(pool, pdolOff, pdolLen, (short) 0x5F2A, pdolData, (short) 0, scratch, t, (short) 2);
            t = putCardAuthenticationData(scratch, t, (short) 7);
        }
        short dd = (short) 32; // ICC dynamic data after the terminal data in scratch
        scratch[dd] = 2;
        Util.setShort(scratch, (short) (dd + 1), atc);
        return putSdad(out, p, scratch, dd, (short) 3, scratch, (short) 0, t);
    }

    /**
     * 9F69 value: fDDA version ‖ card unpredictable number ‖ CTQ of this transaction (Book C-7;
     * docs/emv-notes.md, Kernel 7 / qPBOC), {@code len} bytes.
     */
    private short putCardAuthenticationData(byte[] out, short off, short len) {
        work[0] = fddaVersion;
        Util.arrayCopyNonAtomic(cardUn, (short) 0, work, (short) 1, (short) 4);
        Util.arrayCopyNonAtomic(ctq, (short) 0, work, (short) 5, (short) 2);
        short n = len < 7 ? len : 7;
        Util.arrayFillNonAtomic(out, off, len, (byte) 0);
        Util.arrayCopyNonAtomic(work, (short) 0, out, off, n);
        return (short) (off + len);
    }

    /** Writes 9F4B with the SDAD over the given dynamic data. */
    private short putSdad(byte[] out, short p, byte[] dd, short ddOff, short ddLen,
                          byte[] td, short tdOff, short tdLen) {
        short nic = signer.modulusLength();
        p = Tlv.putTag(out, p, (short) 0x9F4B);
        p = Tlv.putLength(out, p, nic);
        signer.sign(dd, ddOff, ddLen, td, tdOff, tdLen, work, (short) 0, out, p);
        return (short) (p + nic);
    }

    // ------------------------------------------------------------ READ RECORD (Book 3, 6.5.11)

    /**
     * READ RECORD: P1 = record number, P2 = SFI &lt;&lt; 3 | 100. 6A86 for other P2 forms or
     * record 0, 6A82 when no record has that SFI, 6A83 when the record is not there. 9F69 in a
     * record is filled in with this transaction's card authentication data after a quick-path
     * GPO, zeros before.
     */
    private void readRecord(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte rec = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        if ((p2 & 0x07) != 0x04 || rec == 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        byte sfi = (byte) ((p2 >> 3) & 0x1F);
        if (sfi == 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (receive(apdu) != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short key = (short) (((sfi & 0xFF) << 8) | (rec & 0xFF));
        if (!store.has(key)) {
            ISOException.throwIt(store.hasSfi(sfi) ? ISO7816.SW_RECORD_NOT_FOUND : ISO7816.SW_FILE_NOT_FOUND);
        }
        byte[] out = response.buffer();
        short len = copyObject(key, out, (short) 0);
        short at = Tlv.find(out, (short) 0, len, TAG_CARD_AUTH_DATA);
        if (at != Tlv.NOT_FOUND) {
            short v = Tlv.valueOffset(out, at);
            short vl = Tlv.valueLength(out, at);
            if (session[S_STATE] == ST_QUICK_DONE) {
                putCardAuthenticationData(out, v, vl);
            } else {
                Util.arrayFillNonAtomic(out, v, vl, (byte) 0); // no quick-path data yet, as the HCE card
            }
        }
        response.send(apdu, (short) 0, len);
    }

    // --------------------------------------------------------------- GET DATA (Book 3, 6.5.7)

    private void getData(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short tag = Util.getShort(buf, ISO7816.OFFSET_P1);
        if (receive(apdu) != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        byte[] out = response.buffer();
        short end;
        if (tag == TAG_ATC) {
            end = Tlv.putShort(out, (short) 0, tag, counter.value());
        } else if (tag == TAG_LAST_ONLINE_ATC) {
            end = Tlv.putShort(out, (short) 0, tag, counter.lastOnlineAtc());
        } else if (store.has(tag) && (tag & (short) 0xFF00) != 0 && isGetDataObject(tag)) {
            end = Tlv.put(out, (short) 0, tag, store.pool(), store.offset(tag), store.length(tag));
        } else {
            end = risk.get(tag, out, (short) 0);
            if (end == Tlv.NOT_FOUND) {
                ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND);
            }
        }
        response.send(apdu, (short) 0, end);
    }

    /** Data objects personalised in DGI B004 are readable; DOLs, track 2 and keys are not. */
    private static boolean isGetDataObject(short tag) {
        return tag != TAG_PDOL && tag != TAG_DDOL && tag != TAG_PSN && tag != TAG_CTQ;
    }

    // ------------------------------------------------------------ GENERATE AC (Book 3, 6.5.5)

    /**
     * GENERATE AC after a full-path GPO: the first with the CDOL1 data (card action analysis),
     * the second, after an ARQC, with the CDOL2 data (issuer's answer). P1 b8-b7 = the cryptogram
     * asked for (11 → 6A86; ARQC in the second → 6A86, Book 3 6.5.5.2), b5 = CDA (6A86 without an
     * ICC key or the AIP's CDA bit). Response format 1 {@code 80 CID ‖ ATC ‖ AC ‖ IAD} (the PBOC
     * default); with CDA format 2 {@code 77 {9F27 9F36 9F4B 9F10}}, the AC inside the
     * signature only (Book 2 6.6.1; none on an AAC).
     */
    private void generateAc(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte requested = (byte) (p1 & 0xC0);
        if (requested == (byte) 0xC0 || (p1 & 0x2F) != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        boolean cda = (p1 & 0x10) != 0;
        byte[] pool = store.pool();
        if (cda && (!signer.ready() || (pool[store.offset(TAG_AIP)] & AIP1_CDA) == 0)) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short state = session[S_STATE];
        boolean first = state == ST_FULL_GPO;
        boolean online = state == ST_FIRST_AC && (byte) session[S_FIRST_CID] == CardRiskManagement.CID_ARQC;
        if (!first && !online) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        short dolKey = first ? TAG_CDOL1 : TAG_CDOL2;
        short dolOff = store.offset(dolKey);
        short dolLen = store.length(dolKey);
        short lc = receive(apdu);
        if (lc != (dolOff == Tlv.NOT_FOUND ? 0 : Dol.dataLength(pool, dolOff, dolLen)) || lc > DOL_DATA_MAX) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (!first && requested == CardRiskManagement.CID_ARQC) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short atc = session[S_ATC];
        boolean dda = session[S_DDA_DONE] != 0;
        byte cid;
        if (first) {
            Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, cdol1Data, (short) 0, lc);
            session[S_CDOL1_LEN] = lc;
            Dol.copyValue(pool, dolOff, dolLen, (short) 0x9F02, cdol1Data, (short) 0, scratch, (short) 0, (short) 6);
            Dol.copyValue(pool, dolOff, dolLen, (short) 0x5F2A, cdol1Data, (short) 0, scratch, (short) 6, (short) 2);
            cid = risk.decideFirstGenerateAc(requested, scratch, (short) 0, scratch, (short) 6);
            session[S_FIRST_CID] = cid;
            boolean velocity = requested == CardRiskManagement.CID_TC && cid != CardRiskManagement.CID_TC
                    && risk.velocityExceeded();
            CardRiskManagement.buildCvr(cvr, (short) 0, ApplicationCryptogram.CVR2_SECOND_NOT_REQUESTED, cid,
                    cvrBefore, (short) 0, velocity, dda);
            cryptogram.generate(acKey, pool, dolOff, dolLen, cdol1Data, (short) 0,
                    pool, store.offset(TAG_AIP), atc, cvr, (short) 0, ac, (short) 0);
            recordCryptogram(cid, true);
        } else {
            cid = secondGenerateAc(buf, requested, pool, dolOff, dolLen, dda);
        }
        session[S_STATE] = first ? ST_FIRST_AC : ST_SECOND_AC;
        byte[] out = response.buffer();
        boolean signing = cda && cid != CardRiskManagement.CID_AAC;
        if (!signing) {
            short p = Tlv.putTag(out, (short) 0, (short) 0x80);
            p = Tlv.putLength(out, p, (short) (1 + 2 + ApplicationCryptogram.AC_LENGTH + ApplicationCryptogram.IAD_LENGTH));
            out[p++] = cid;
            p = Util.setShort(out, p, atc);
            p = Util.arrayCopyNonAtomic(ac, (short) 0, out, p, ApplicationCryptogram.AC_LENGTH);
            p = cryptogram.putIadValue(out, p, cvr, (short) 0);
            response.send(apdu, (short) 0, p);
            return;
        }
        short p = TEMPLATE_HEADROOM;
        p = Tlv.putByte(out, p, (short) 0x9F27, cid);
        p = Tlv.putShort(out, p, TAG_ATC, atc);
        // the IAD is hashed (TDHC) but written after the signature, as the HCE card orders them
        short iad = (short) (ResponseChannel.BUFFER_SIZE - 16);
        short iadEnd = cryptogram.putIad(out, iad, cvr, (short) 0);
        p = putCdaSignature(out, p, iad, (short) (iadEnd - iad), first, buf, pool, dolOff, dolLen, cid);
        p = cryptogram.putIad(out, p, cvr, (short) 0);
        sendTemplate77(apdu, p);
    }

    /**
     * Second GENERATE AC (Book 3 9.3, 10.9): with ARC Y3/Z3 ("unable to go online", 8A in CDOL2)
     * the card's own offline limits decide; otherwise a TC needs issuer authentication that
     * verified (EXTERNAL AUTHENTICATE earlier in this selection, or 91 in CDOL2) and an approving
     * ARC (00, 10, 11). Returns the CID; the AC is left in {@code ac}.
     */
    private byte secondGenerateAc(byte[] buf, byte requested, byte[] pool, short dolOff, short dolLen,
                                  boolean dda) {
        short data = ISO7816.OFFSET_CDATA;
        // ARC (8A) from CDOL2, zeros when not listed; scratch[0..2)
        Dol.copyValue(pool, dolOff, dolLen, (short) 0x8A, buf, data, scratch, (short) 0, (short) 2);
        boolean unableToGoOnline = (scratch[0] == 'Y' || scratch[0] == 'Z') && scratch[1] == '3';
        short auth = session[S_EXTERNAL_AUTH_DONE]; // 0 none, AUTH_VALID / AUTH_DECLINED / AUTH_FAILED
        if (!unableToGoOnline && auth == 0) {
            short at = Dol.valueOffset(pool, dolOff, dolLen, (short) 0x91);
            short len = Dol.entryLength(pool, dolOff, dolLen, (short) 0x91);
            if (at != Tlv.NOT_FOUND && len >= 10 && !allZero(buf, (short) (data + at), len)) {
                auth = checkArpc(buf, (short) (data + at), session[S_ATC], ac, (short) 0);
            }
        }
        byte cid;
        boolean velocity = false;
        if (requested == CardRiskManagement.CID_AAC) {
            cid = CardRiskManagement.CID_AAC;
        } else if (unableToGoOnline) {
            Dol.copyValue(pool, store.offset(TAG_CDOL1), store.length(TAG_CDOL1), (short) 0x9F02,
                    cdol1Data, (short) 0, scratch, (short) 2, (short) 6);
            velocity = risk.upperLimitsExceeded(scratch, (short) 2);
            cid = velocity ? CardRiskManagement.CID_AAC : CardRiskManagement.CID_TC;
        } else {
            boolean approved = auth == AUTH_VALID;
            cid = approved ? CardRiskManagement.CID_TC : CardRiskManagement.CID_AAC;
        }
        if (blocked) {
            cid = CardRiskManagement.CID_AAC; // blocked by a script earlier in this transaction
        }
        byte second = cid == CardRiskManagement.CID_TC ? (byte) 0x40 : (byte) 0x00;
        CardRiskManagement.buildCvr(cvr, (short) 0, second, (byte) session[S_FIRST_CID],
                cvrBefore, (short) 0, velocity, dda);
        if (auth == AUTH_FAILED) {
            cvr[1] |= CardRiskManagement.CVR2_ISSUER_AUTH_FAILED;
        }
        if (unableToGoOnline) {
            cvr[1] |= CardRiskManagement.CVR2_UNABLE_TO_GO_ONLINE;
        }
        cryptogram.generate(acKey, pool, store.offset(TAG_CDOL1), store.length(TAG_CDOL1), cdol1Data, (short) 0,
                pool, dolOff, dolLen, buf, data,
                pool, store.offset(TAG_AIP), session[S_ATC], cvr, (short) 0, ac, (short) 0);
        if (unableToGoOnline) {
            risk.recordOfflineCompletion(cid);
        } else {
            boolean failed = auth == AUTH_FAILED;
            risk.recordSecondGenerateAc(failed, auth == 0);
            if (!failed) {
                counter.setLastOnlineAtc(session[S_ATC]);
            }
        }
        return cid;
    }

    private static boolean allZero(byte[] buf, short off, short len) {
        for (short i = 0; i < len; i++) {
            if (buf[(short) (off + i)] != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * ARPC method 1 (Book 2 8.2.1) over {@code arqc} with the session key of {@code atc}:
     * {@code data} = ARPC (8) ‖ ARC (2). AUTH_VALID with an approving ARC (00, 10, 11),
     * AUTH_DECLINED with another, AUTH_FAILED when the ARPC does not verify.
     */
    private short checkArpc(byte[] data, short off, short atc, byte[] arqc, short arqcOff) {
        crypto.deriveSessionKey(acKey, atc);
        crypto.arpcMethod1(arqc, arqcOff, data, (short) (off + 8), scratch, (short) 8);
        if (!PbocCrypto.macEquals(scratch, (short) 8, data, off, (short) 8)) {
            return AUTH_FAILED;
        }
        byte a = data[(short) (off + 8)];
        byte b = data[(short) (off + 9)];
        boolean approved = (a == '0' && b == '0') || (a == '1' && (b == '0' || b == '1'));
        return approved ? AUTH_VALID : AUTH_DECLINED;
    }

    /**
     * CDA (Book 2, 6.6): ICC dynamic data = 08 ‖ IDN ‖ CID ‖ AC ‖ Transaction Data Hash Code,
     * the hash code over PDOL data ‖ CDOL1 data (‖ CDOL2 data) ‖ the response TLVs but 9F4B
     * (9F27, 9F36 at {@code out[TEMPLATE_HEADROOM, p)}, then the IAD TLV at {@code iadOff});
     * terminal dynamic data = the UN (9F37) from the CDOL data.
     */
    private short putCdaSignature(byte[] out, short p, short iadOff, short iadLen, boolean first, byte[] buf,
                                  byte[] pool, short dolOff, short dolLen, byte cid) {
        random.generateData(idn, (short) 0, (short) 8);
        short dd = 8; // scratch[0..4) UN, dynamic data from 8
        Dol.copyValue(pool, dolOff, dolLen, (short) 0x9F37,
                first ? cdol1Data : buf, first ? (short) 0 : ISO7816.OFFSET_CDATA, scratch, (short) 0, (short) 4);
        short q = dd;
        scratch[q++] = 8;
        q = Util.arrayCopyNonAtomic(idn, (short) 0, scratch, q, (short) 8);
        scratch[q++] = cid;
        q = Util.arrayCopyNonAtomic(ac, (short) 0, scratch, q, ApplicationCryptogram.AC_LENGTH);
        javacard.security.MessageDigest sha = signer.digest();
        sha.reset();
        sha.update(pdolData, (short) 0, session[S_PDOL_LEN]);
        sha.update(cdol1Data, (short) 0, session[S_CDOL1_LEN]);
        if (!first) {
            sha.update(buf, ISO7816.OFFSET_CDATA, Dol.dataLength(pool, dolOff, dolLen));
        }
        sha.update(out, TEMPLATE_HEADROOM, (short) (p - TEMPLATE_HEADROOM));
        sha.doFinal(out, iadOff, iadLen, scratch, q);
        q = (short) (q + DynamicSignature.HASH_LENGTH);
        return putSdad(out, p, scratch, dd, (short) (q - dd), scratch, (short) 0, (short) 4);
    }

    // ------------------------------------------------- INTERNAL AUTHENTICATE (Book 3, 6.5.9)

    /**
     * DDA after a full-path GPO and before the first GENERATE AC: SDAD over ICC dynamic data
     * 08 ‖ IDN (8 random bytes) and the DDOL data the terminal sent; response format 1
     * {@code 80 L SDAD}; the next cryptogram's CVR reports "offline DDA performed". 6D00 for an
     * application without an ICC key or DDA in its AIP (it does not implement the command),
     * 6700 without data or with more than the signature holds, 6985 at another moment.
     */
    private void internalAuthenticate(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (!signer.ready() || (store.pool()[store.offset(TAG_AIP)] & AIP1_DDA) == 0) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        requireP1P2Zero(buf);
        short lc = receive(apdu);
        short nic = signer.modulusLength();
        if (lc == 0 || lc > DDOL_DATA_MAX || lc > (short) (nic - 25 - 1 - 8)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (blocked || session[S_STATE] != ST_FULL_GPO) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        session[S_DDA_DONE] = 1;
        Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, scratch, (short) 0, lc);
        random.generateData(idn, (short) 0, (short) 8);
        scratch[DDA_DYNAMIC_DATA] = 8;
        Util.arrayCopyNonAtomic(idn, (short) 0, scratch, (short) (DDA_DYNAMIC_DATA + 1), (short) 8);
        byte[] out = response.buffer();
        short p = Tlv.putTag(out, (short) 0, (short) 0x80);
        p = Tlv.putLength(out, p, nic);
        signer.sign(scratch, DDA_DYNAMIC_DATA, (short) 9, scratch, (short) 0, lc, work, (short) 0, out, p);
        response.send(apdu, (short) 0, (short) (p + nic));
    }

    // ------------------------------------------------- EXTERNAL AUTHENTICATE (Book 3, 6.5.4)

    /**
     * EXTERNAL AUTHENTICATE with the Issuer Authentication Data (91 = ARPC ‖ ARC, Book 2 8.2.1):
     * the ARPC of the last ARQC, after a first GENERATE AC that gave one or, on re-presentation
     * (C-3/C-7 issuer update processing), right after SELECT or a quick-path GPO. Once per
     * selection. 9000 when the ARPC verifies, 6300 when not (remembered: the next transaction
     * reports it in the CVR and does not approve offline); 6985 without an online cryptogram.
     */
    private void externalAuthenticate(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        short lc = receive(apdu);
        if (lc < 8 || lc > 16) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short state = session[S_STATE];
        boolean online = state == ST_FIRST_AC && session[S_FIRST_CID] == CardRiskManagement.CID_ARQC;
        if (!counter.slotUsed((short) 0) || session[S_EXTERNAL_AUTH_DONE] != 0
                || !(online || state == ST_SELECTED || state == ST_QUICK_DONE)) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        byte[] slots = counter.slots();
        short result = checkArpc(buf, ISO7816.OFFSET_CDATA, Util.getShort(slots, (short) 0), slots, (short) 2);
        session[S_EXTERNAL_AUTH_DONE] = result;
        boolean valid = result != AUTH_FAILED;
        risk.recordIssuerAuthentication(valid);
        if (!valid) {
            ISOException.throwIt(Sw.STATE_UNCHANGED_WARNING);
        }
    }

    // ------------------------------------------------ issuer scripts (Book 3, 6.5.1, 6.5.2, 10.10)

    /**
     * Checks the script MAC and counts the command for the next CVR (byte 4: number of script
     * commands, "script processing failed"); 6988 when the MAC fails.
     */
    private short verifyScript(byte[] buf, short lc) {
        short dataLen = scriptMac.check(smiKey, buf, lc);
        risk.recordScriptCommand(dataLen >= 0);
        if (dataLen < 0) {
            ISOException.throwIt(Sw.INCORRECT_SM_DATA);
        }
        return dataLen;
    }

    /** APPLICATION BLOCK (84 1E) / APPLICATION UNBLOCK (84 18), MAC-protected. */
    private void applicationBlock(APDU apdu, boolean block) {
        byte[] buf = apdu.getBuffer();
        requireP1P2Zero(buf);
        short lc = receive(apdu);
        if (verifyScript(buf, lc) != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH); // these commands carry only the MAC
        }
        blocked = block;
    }

    /**
     * PUT DATA (04/84 DA, P1P2 = tag) with MAC: updates a risk data object (DF71, 9F23, DF72) or
     * an object personalised for GET DATA (same length). 6A88 for any other tag.
     */
    private void putData(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short tag = Util.getShort(buf, ISO7816.OFFSET_P1);
        short lc = receive(apdu);
        short dataLen = verifyScript(buf, lc);
        if (risk.put(tag, buf, ISO7816.OFFSET_CDATA, dataLen)) {
            return;
        }
        if (!store.has(tag) || (tag & (short) 0xFF00) == 0 || !isGetDataObject(tag)
                || tag == TAG_CDOL1 || tag == TAG_CDOL2) {
            ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND);
        }
        store.put(tag, buf, ISO7816.OFFSET_CDATA, dataLen);
    }

    // ------------------------------------------------------- personalisation (EMV CPS style)

    public void storeDgi(short dgi, byte[] buf, short off, short len) {
        byte hi = (byte) (dgi >> 8);
        byte lo = (byte) dgi;
        if (hi >= 1 && hi <= 30 && lo != 0) {
            if (len < 2 || buf[off] != 0x70) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA); // a record is a template 70
            }
            store.put(dgi, buf, off, len);
            return;
        }
        switch (dgi) {
            case DGI_FCI:
                if (len < 2 || buf[off] != 0x6F) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                store.put(TAG_FCI, buf, off, len);
                return;
            case DGI_AIP_AFL:
                if (len < 6 || ((short) (len - 2) & 3) != 0) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                store.put(TAG_AIP, buf, off, (short) 2);
                store.put(TAG_AFL, buf, (short) (off + 2), (short) (len - 2));
                return;
            case DGI_DES_KEYS:
                if (len != 48) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                acKey.setKey(buf, off);
                smiKey.setKey(buf, (short) (off + 16));
                smcKey.setKey(buf, (short) (off + 32));
                return;
            case DGI_DOLS:
            case DGI_CARD_DATA:
            case DGI_GET_DATA:
                storeTlvList(dgi, buf, off, len);
                return;
            case DGI_RISK:
                storeTlvList(dgi, buf, off, len);
                return;
            case DGI_INITIAL_ATC:
                if (len != 2) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                counter.set(Util.getShort(buf, off));
                return;
            default:
                if (dgi >= DGI_RSA_FIRST && dgi <= DGI_RSA_LAST) {
                    signer.setComponent(dgi, buf, off, len);
                    return;
                }
                ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND);
        }
    }

    /** A DGI whose value is a list of primitive TLVs, each stored under its tag. */
    private void storeTlvList(short dgi, byte[] buf, short off, short len) {
        short end = (short) (off + len);
        short p = off;
        while (p < end) {
            short tag = Tlv.tagAt(buf, p);
            short v = Tlv.valueOffset(buf, p);
            short vl = Tlv.valueLength(buf, p);
            if ((short) (v + vl) > end) {
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            if (dgi == DGI_RISK) {
                if (!risk.put(tag, buf, v, vl)) {
                    ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND);
                }
            } else if (tag == TAG_DKI) {
                cryptogram.setDki(buf[v]);
            } else if (tag == TAG_CVN) {
                if (buf[v] != ApplicationCryptogram.CVN_01) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA); // only PBOC CVN 01
                }
            } else if (tag == TAG_FDDA_VERSION) {
                fddaVersion = buf[v];
            } else {
                if ((tag == TAG_PDOL || tag == TAG_CDOL1 || tag == TAG_CDOL2)
                        && Dol.dataLength(buf, v, vl) > DOL_DATA_MAX) {
                    ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                }
                store.put(tag, buf, v, vl);
            }
            p = (short) (v + vl);
        }
    }

    /**
     * Last STORE DATA block: the FCI, AIP/AFL, the DES keys, track 2 and the CTQ must be there
     * (6A88 otherwise, and the applet stays personalisable); then STORE DATA is refused for good.
     */
    public void endOfPersonalisation() {
        if (!store.has(TAG_FCI) || !store.has(TAG_AIP) || !acKey.isInitialized()
                || !store.has(TAG_TRACK2) || !store.has(TAG_CTQ)) {
            ISOException.throwIt(Sw.REFERENCED_DATA_NOT_FOUND);
        }
        personalised = true;
    }
}
