package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.emvtap.bridge.CardImage;
import org.junit.jupiter.api.Test;

/** The ATC (9F36): persistent, incremented once per transaction before the cryptogram leaves. */
class TransactionCounterTest {

    static final String ONLINE = TestCard.gpo(TestCard.pdolData(TestCard.TTQ_ONLINE_REQUIRED, "000000000100", "01020304"));

    @Test
    void atcIsIncrementedByEachGpoAndSurvivesPowerCycles() throws Exception {
        TestCard t = TestCard.personalised();
        for (int i = 1; i <= 3; i++) {
            t.card.reset();
            t.selectPayment();
            byte[] atc = Host.value(Host.inside(t.ok(ONLINE)), 0x9F36);
            assertArrayEquals(new byte[] {0, (byte) i}, atc);
        }
        t.card.reset();
        t.selectPayment();
        assertArrayEquals(Host.hex("9F36020003"), t.ok("80CA9F3600"));
    }

    @Test
    void atcInTheResponseIsTheOneAlreadyStoredOnTheCard() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        byte[] atc = Host.value(Host.inside(t.ok(ONLINE)), 0x9F36);
        assertArrayEquals(Host.cat(Host.hex("9F3602"), atc), t.ok("80CA9F3600"));
    }

    @Test
    void aFailedGpoAfterTheAtcStepDoesNotGiveTheAtcBack() throws Exception {
        TestCard t = TestCard.personalised();
        t.selectPayment();
        t.ok(ONLINE);
        t.card.reset(); // the card left the field mid-transaction: the counter stays where it was
        t.selectPayment();
        assertArrayEquals(Host.hex("9F36020001"), t.ok("80CA9F3600"));
    }

    @Test
    void initialAtcFromPersonalisationIsContinued() throws Exception {
        CardImage img = TestCard.image(1024);
        img.initialAtc = 0x023F;
        TestCard t = new TestCard(img, true);
        t.selectPayment();
        assertArrayEquals(Host.hex("0240"), Host.value(Host.inside(t.ok(ONLINE)), 0x9F36));
    }

    @Test
    void exhaustedAtcRefusesToTransactWith6985() throws Exception {
        CardImage img = TestCard.image(1024);
        img.initialAtc = 0xFFFE;
        TestCard t = new TestCard(img, true);
        t.selectPayment();
        assertArrayEquals(Host.hex("FFFF"), Host.value(Host.inside(t.ok(ONLINE)), 0x9F36));
        t.card.reset();
        t.selectPayment();
        assertEquals(0x6985, TestCard.sw(t.send(ONLINE)));
        assertArrayEquals(Host.hex("9F3602FFFF"), t.ok("80CA9F3600"));
    }
}
