package siptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// MediaAddr is where an SDP body asks for audio: its c= address and m=audio port.
func MediaAddr(sdp []byte) (netip.AddrPort, error) {
	var ip netip.Addr
	port := -1
	sc := bufio.NewScanner(bytes.NewReader(sdp))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "c=IN IP4 ") || strings.HasPrefix(line, "c=IN IP6 "):
			if a, err := netip.ParseAddr(strings.Fields(line)[2]); err == nil {
				ip = a
			}
		case strings.HasPrefix(line, "m=audio "):
			if n, err := strconv.Atoi(strings.Fields(line)[1]); err == nil {
				port = n
			}
		}
	}
	if !ip.IsValid() || port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("siptest: no audio address in the SDP")
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// SendTone streams d of a 440 Hz tone as PCMU (payload type 0), one 20 ms packet at a time
// on the phone's RTP socket, to the audio address of the other side's SDP (the 200 OK's
// body on a call the phone placed, the INVITE's on one it answered). Asterisk records
// and bridges only audio that flows: a recorded call needs it.
func (p *Phone) SendTone(ctx context.Context, sdp []byte, d time.Duration) error {
	to, err := MediaAddr(sdp)
	if err != nil {
		return err
	}
	dst := net.UDPAddrFromAddrPort(to)
	const samples = 160 // 20 ms at 8 kHz
	ssrc, seq, ts := rand.Uint32(), uint16(rand.Uint32()), rand.Uint32()
	pkt := make([]byte, 12+samples)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		pkt[0], pkt[1] = 0x80, 0 // RTP v2, PCMU
		if n == 0 {
			pkt[1] |= 0x80 // marker on the first packet
		}
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		binary.BigEndian.PutUint32(pkt[8:], ssrc)
		for i := range samples {
			v := 8000 * math.Sin(2*math.Pi*440*float64(n*samples+i)/8000)
			pkt[12+i] = ulaw(int16(v))
		}
		if _, err := p.rtp.WriteTo(pkt, dst); err != nil {
			return fmt.Errorf("siptest: send RTP: %w", err)
		}
		seq++
		ts += samples
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// ulaw encodes a linear sample as G.711 mu-law.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	sign := byte(0)
	v := int(s)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}
