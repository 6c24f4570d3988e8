package org.emvtap.bridge;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads a card profile (docs/contracts.md, format "emvtap-card-profile/1") into the PPSE FCI and
 * one {@link CardImage} per payment application.
 */
public final class ProfileReader {

    public static final String FORMAT = "emvtap-card-profile/1";

    public final byte[] ppseFci;
    public final List<CardImage> applications;

    private ProfileReader(byte[] ppseFci, List<CardImage> applications) {
        this.ppseFci = ppseFci;
        this.applications = applications;
    }

    public static ProfileReader load(Path path) throws IOException {
        return parse(new String(Files.readAllBytes(path), StandardCharsets.UTF_8));
    }

    @SuppressWarnings("unchecked")
    public static ProfileReader parse(String json) {
        Map<String, Object> root = (Map<String, Object>) Json.parse(json);
        if (!FORMAT.equals(root.get("format"))) {
            throw new IllegalArgumentException("not an emvtap card profile (format "
                    + root.get("format") + ", expected " + FORMAT + ")");
        }
        byte[] ppse = hex((Map<String, Object>) root.get("ppse"), "fci");
        byte[] psn = Hex.decode(str(root, "psn", "00"));
        List<CardImage> apps = new ArrayList<>();
        for (Object o : (List<Object>) root.get("applications")) {
            apps.add(application((Map<String, Object>) o, psn));
        }
        if (apps.isEmpty()) {
            throw new IllegalArgumentException("profile has no applications");
        }
        return new ProfileReader(ppse, apps);
    }

    @SuppressWarnings("unchecked")
    static CardImage application(Map<String, Object> a, byte[] psn) {
        CardImage c = new CardImage();
        c.aid = hex(a, "aid");
        c.fci = hex(a, "fci");
        c.aip = hex(a, "aip");
        c.afl = hex(a, "afl");
        c.pdol = Hex.decode(str(a, "pdol", ""));
        c.cdol1 = Hex.decode(str(a, "cdol1", ""));
        c.cdol2 = Hex.decode(str(a, "cdol2", ""));
        c.ddol = Hex.decode(str(a, "ddol", ""));
        c.track2 = hex(a, "track2");
        c.psn = psn;
        c.ctq = hex(a, "ctq");
        c.dki = Integer.parseInt(str(a, "dki", "01"), 16);
        c.cvn = ((Number) a.getOrDefault("cvn", 1L)).intValue();
        c.fddaVersion = Integer.parseInt(str(a, "fdda_version", "01"), 16);
        Map<String, Object> risk = (Map<String, Object>) a.getOrDefault("risk", new java.util.HashMap<String, Object>());
        c.offlineAmountLimit = ((Number) risk.getOrDefault("offline_amount_limit", 0L)).longValue();
        c.consecutiveOfflineLimit = ((Number) risk.getOrDefault("consecutive_offline_limit", 0L)).intValue();
        c.allowOffline = (Boolean) risk.getOrDefault("allow_offline", Boolean.TRUE);
        Map<String, Object> extra = (Map<String, Object>) a.getOrDefault("extra", new java.util.HashMap<String, Object>());
        Map<String, Object> extraRisk = (Map<String, Object>) extra.getOrDefault("risk", new java.util.HashMap<String, Object>());
        c.currency = Hex.decode(String.valueOf(extraRisk.getOrDefault("currency", "0156")));
        Map<String, Object> getData = (Map<String, Object>) a.getOrDefault("get_data", new java.util.LinkedHashMap<String, Object>());
        for (Map.Entry<String, Object> e : getData.entrySet()) {
            int tag = Integer.parseInt(e.getKey(), 16);
            byte[] value = Hex.decode((String) e.getValue());
            if (tag == 0x9F36) {
                c.initialAtc = ((value[0] & 0xFF) << 8) | (value[1] & 0xFF);
            } else if (tag != 0x9F13) {
                c.getData.put(tag, value);
            }
        }
        for (Object o : (List<Object>) a.get("records")) {
            Map<String, Object> r = (Map<String, Object>) o;
            c.records.add(new CardImage.Record(((Number) r.get("sfi")).intValue(),
                    ((Number) r.get("record")).intValue(), Hex.decode((String) r.get("data"))));
        }
        Map<String, Object> keys = (Map<String, Object>) a.get("keys");
        c.masterKeys = new byte[48];
        System.arraycopy(hex(keys, "ac"), 0, c.masterKeys, 0, 16);
        System.arraycopy(hex(keys, "smi"), 0, c.masterKeys, 16, 16);
        System.arraycopy(hex(keys, "smc"), 0, c.masterKeys, 32, 16);
        Map<String, Object> rsa = (Map<String, Object>) a.get("icc_rsa");
        if (rsa != null) {
            c.rsa = crt(new BigInteger(1, hex(rsa, "n")), new BigInteger(1, hex(rsa, "d")),
                    new BigInteger(1, hex(rsa, "p")), new BigInteger(1, hex(rsa, "q")));
        }
        return c;
    }

    /** CRT parts from n, d, p, q, each left-padded to half the modulus length. */
    public static CardImage.RsaCrt crt(BigInteger n, BigInteger d, BigInteger p, BigInteger q) {
        int nBytes = (n.bitLength() + 7) / 8;
        int half = nBytes / 2;
        BigInteger one = BigInteger.ONE;
        return new CardImage.RsaCrt(nBytes,
                fixed(p, half), fixed(q, half),
                fixed(d.mod(p.subtract(one)), half), fixed(d.mod(q.subtract(one)), half),
                fixed(q.modInverse(p), half));
    }

    static byte[] fixed(BigInteger v, int len) {
        byte[] raw = v.toByteArray();
        int start = 0;
        while (start < raw.length - 1 && raw[start] == 0) {
            start++;
        }
        int n = raw.length - start;
        if (n > len) {
            throw new IllegalArgumentException("RSA CRT part longer than half the modulus");
        }
        byte[] out = new byte[len];
        System.arraycopy(raw, start, out, len - n, n);
        return out;
    }

    private static String str(Map<String, Object> m, String key, String dflt) {
        Object v = m.get(key);
        return v == null ? dflt : v.toString();
    }

    private static byte[] hex(Map<String, Object> m, String key) {
        Object v = m == null ? null : m.get(key);
        if (!(v instanceof String)) {
            throw new IllegalArgumentException("profile: missing field '" + key + "'");
        }
        return Hex.decode((String) v);
    }
}
