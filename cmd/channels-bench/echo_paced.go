package main

import "time"

// pace is the open-loop schedule of one socket under echo -rate: the
// sockets share rate pushes per second, socket index of n sending its k-th
// push at begin + (index + k*n)/rate, so that pushes are spread evenly
// over time and over sockets.
type pace struct {
	begin    time.Time
	rate     float64 // pushes per second, all sockets together
	index, n int
}

// due returns when push k of the socket is due.
func (p *pace) due(k int) time.Time {
	return p.begin.Add(time.Duration((float64(p.index) + float64(k)*float64(p.n)) / p.rate * 1e9))
}

// runPaced sends pushes on the socket's schedule until the window ends,
// with at most one in flight: a push due while the previous reply is
// pending is sent as soon as that reply arrives and counted as late (the
// server is not keeping up with the rate). Latency is measured from the
// actual send.
func (s *echoer) runPaced(cfg *config, topicJSON, eventJSON []byte, w echoWindow, p pace) {
	if err := s.c.ws.SetReadDeadline(w.deadline); err != nil {
		s.endErr = err
		return
	}
	for k := 0; ; k++ {
		due := p.due(k)
		if due.UnixNano() >= w.end {
			return
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if err := s.send(cfg, topicJSON, eventJSON); err != nil {
			s.endErr = err
			return
		}
		if !s.awaitReply(w) {
			s.unanswered++
			return
		}
		if time.Now().After(p.due(k + 1)) {
			s.late++
		}
	}
}

// awaitReply reads until the pending push is answered; false when the
// socket failed or the deadline passed first.
func (s *echoer) awaitReply(w echoWindow) bool {
	for {
		b, err := s.c.readFrame()
		if err != nil {
			s.endErr = err
			return false
		}
		for len(b) > 0 {
			var msg []byte
			if msg, b = s.c.nextMessage(b); msg == nil {
				continue
			}
			if s.answer(msg, time.Now().UnixNano(), w, true) {
				return true
			}
		}
	}
}
