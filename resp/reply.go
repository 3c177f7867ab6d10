package resp

import (
	"strconv"

	"github.com/tidwall/redcon"
)

// writer appends replies to a connection's output buffer in the protocol
// version the client chose with HELLO. redcon encodes the RESP2 types; the
// few RESP3 types the commands need (null, map) are written here.
type writer struct {
	b     []byte
	proto int // 2 or 3
}

func (w *writer) ok()                 { w.b = redcon.AppendOK(w.b) }
func (w *writer) simple(s string)     { w.b = redcon.AppendString(w.b, s) }
func (w *writer) bulk(v []byte)       { w.b = redcon.AppendBulk(w.b, v) }
func (w *writer) bulkString(s string) { w.b = redcon.AppendBulkString(w.b, s) }
func (w *writer) int(n int64)         { w.b = redcon.AppendInt(w.b, n) }
func (w *writer) array(n int)         { w.b = redcon.AppendArray(w.b, n) }

// error writes an error reply; msg starts with its code ("ERR ...").
func (w *writer) error(msg string) { w.b = redcon.AppendError(w.b, msg) }

// null writes a missing value: "$-1" in RESP2, "_" in RESP3.
func (w *writer) null() {
	if w.proto == 3 {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = redcon.AppendNull(w.b)
}

// nullArray writes a missing array: "*-1" in RESP2, "_" in RESP3.
func (w *writer) nullArray() {
	if w.proto == 3 {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = append(w.b, "*-1\r\n"...)
}

// mapHeader starts a map of n pairs: a flat array of 2n elements in RESP2.
func (w *writer) mapHeader(n int) {
	if w.proto == 3 {
		w.b = append(w.b, '%')
		w.b = strconv.AppendInt(w.b, int64(n), 10)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.array(2 * n)
}

// setHeader starts a set of n elements: an array in RESP2.
func (w *writer) setHeader(n int) {
	if w.proto == 3 {
		w.b = append(w.b, '~')
		w.b = strconv.AppendInt(w.b, int64(n), 10)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.array(n)
}

// value writes v as a bulk string, or null when missing.
func (w *writer) value(v []byte, ok bool) {
	if !ok {
		w.null()
		return
	}
	w.bulk(v)
}

// bulkStrings writes an array of bulk strings.
func (w *writer) bulkStrings(ss []string) {
	w.array(len(ss))
	for _, s := range ss {
		w.bulkString(s)
	}
}
