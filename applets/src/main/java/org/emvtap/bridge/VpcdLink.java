package org.emvtap.bridge;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketOption;

/**
 * The card side of vsmartcard's vpcd protocol: the card is the TCP client of vpcd; every message
 * is a 2-byte big-endian length and a payload; a 1-byte payload is a control code (0 power off,
 * 1 power on, 2 reset, 4 ATR request, answered with the ATR), anything longer an APDU, answered
 * with the response APDU (docs/architecture.md, Virtual hardware).
 *
 * <p>Debian's vpcd writes the length and the payload in two segments with Nagle on: without
 * TCP_QUICKACK after every read the card's delayed ACK costs ~40 ms per APDU. TCP_QUICKACK
 * ({@code jdk.net.ExtendedSocketOptions}, JDK 10+) is reached reflectively so the project keeps
 * Java 8 source compatibility; on an older JDK the link warns once and runs slow.
 */
final class VpcdLink implements AutoCloseable {

    static final int CTRL_OFF = 0;
    static final int CTRL_ON = 1;
    static final int CTRL_RESET = 2;
    static final int CTRL_ATR = 4;

    private static final Method SET_OPTION;
    private static final Object TCP_QUICKACK;

    static {
        Method m = null;
        Object opt = null;
        try {
            opt = Class.forName("jdk.net.ExtendedSocketOptions").getField("TCP_QUICKACK").get(null);
            m = Socket.class.getMethod("setOption", SocketOption.class, Object.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("vpcd bridge: TCP_QUICKACK unavailable (" + e + "): ~40 ms per APDU");
        }
        SET_OPTION = m;
        TCP_QUICKACK = opt;
    }

    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;

    private VpcdLink(Socket socket) throws IOException {
        this.socket = socket;
        socket.setTcpNoDelay(true);
        this.in = new DataInputStream(socket.getInputStream());
        this.out = socket.getOutputStream();
        quickAck();
    }

    static VpcdLink connect(String host, int port, int timeoutMillis) throws IOException {
        Socket s = new Socket();
        try {
            s.connect(new InetSocketAddress(host, port), timeoutMillis);
            return new VpcdLink(s);
        } catch (IOException e) {
            s.close();
            throw e;
        }
    }

    private void quickAck() {
        if (SET_OPTION == null) {
            return;
        }
        try {
            SET_OPTION.invoke(socket, TCP_QUICKACK, Boolean.TRUE);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("TCP_QUICKACK", e);
        }
    }

    /**
     * The next message from vpcd; EOFException when vpcd closed the connection. QUICKACK goes
     * on after every read, the length's too: vpcd holds the payload (Nagle) until the length
     * segment is acknowledged, and setting TCP_QUICKACK sends a pending ACK at once.
     */
    byte[] receive() throws IOException {
        int len = in.readUnsignedShort();
        quickAck();
        byte[] msg = new byte[len];
        in.readFully(msg);
        quickAck(); // Linux leaves quick-ack mode on its own: set it again after every read
        if (len == 0) {
            throw new EOFException("empty vpcd frame");
        }
        return msg;
    }

    void send(byte[] payload) throws IOException {
        byte[] frame = new byte[payload.length + 2];
        frame[0] = (byte) (payload.length >> 8);
        frame[1] = (byte) payload.length;
        System.arraycopy(payload, 0, frame, 2, payload.length);
        out.write(frame);
        out.flush();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
