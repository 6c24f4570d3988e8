package org.emvtap.bridge;

import com.licel.jcardsim.smartcardio.CardSimulator;
import java.io.ByteArrayOutputStream;
import java.util.List;
import javacard.framework.AID;
import org.emvtap.applet.PaymentApplet;
import org.emvtap.applet.PpseApplet;

/**
 * The card: jcardsim's {@link CardSimulator} with the PPSE applet and one payment applet instance
 * per application installed the way GlobalPlatform INSTALL [for install] would (instance AID and
 * application parameters in the install data), personalised through its own STORE DATA APDUs.
 */
public final class SimulatedCard {

    /** ISO 14443-4 card as PC/SC presents it, no historical bytes (PC/SC part 3, 3.1.3.2.3). */
    public static final byte[] DEFAULT_ATR = Hex.decode("3B8080010 1".replace(" ", ""));

    private final CardSimulator simulator = new CardSimulator();
    private final byte[] atr;

    public SimulatedCard(byte[] atr) {
        this.atr = atr.clone();
    }

    public SimulatedCard() {
        this(DEFAULT_ATR);
    }

    public byte[] atr() {
        return atr.clone();
    }

    public CardSimulator simulator() {
        return simulator;
    }

    public void installPpse() {
        install(PersoCommands.PPSE_AID, PpseApplet.class, new byte[0]);
    }

    public void installPayment(byte[] aid, int modulusBytes) {
        install(aid, PaymentApplet.class, PersoCommands.installParameters(modulusBytes));
    }

    private void install(byte[] aid, Class<? extends javacard.framework.Applet> cls, byte[] params) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(aid.length);
        b.write(aid, 0, aid.length);
        b.write(0); // no control information
        b.write(params.length);
        b.write(params, 0, params.length);
        byte[] data = b.toByteArray();
        simulator.installApplet(new AID(aid, (short) 0, (byte) aid.length), cls, data, (short) 0, (byte) data.length);
    }

    /** Installs the PPSE and one payment instance per application of the profile. */
    public void install(ProfileReader profile) {
        installPpse();
        for (CardImage app : profile.applications) {
            installPayment(app.aid, app.modulusBytes());
        }
    }

    /** Installs and personalises everything in the profile. */
    public void installAndPersonalise(ProfileReader profile) {
        install(profile);
        run(PersoCommands.forPpse(profile.ppseFci));
        for (CardImage app : profile.applications) {
            run(PersoCommands.forPayment(app));
        }
        reset();
    }

    /** Sends APDUs, failing on the first status word other than 9000. */
    public void run(List<byte[]> apdus) {
        for (byte[] apdu : apdus) {
            byte[] r = transmit(apdu);
            int sw = ((r[r.length - 2] & 0xFF) << 8) | (r[r.length - 1] & 0xFF);
            if (sw != 0x9000) {
                throw new IllegalStateException(String.format("perso APDU %s answered %04X",
                        Hex.encode(apdu, 0, Math.min(apdu.length, 8)), sw));
            }
        }
    }

    public byte[] transmit(byte[] apdu) {
        return simulator.transmitCommand(apdu);
    }

    /** Power on or warm reset: jcardsim deselects, transient memory is cleared. */
    public void reset() {
        simulator.reset();
    }
}
