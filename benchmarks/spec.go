package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"os"
)

// The spec file hands the Python peer the generated data it cannot cheaply
// regenerate: the value pools, the keys and the op streams. Layout:
//
//	"DCSPEC1\n", uint32 n, n bytes of JSON header, then the sections
//
// The header holds the params and, for each section, its offset (from the
// end of the header) and length. Integers are little-endian; key and op
// arrays are uint32. Values are built by the script from the pools with the
// same rule as appendValue. The keys are those below base11: the script
// makes W11's itself, with the same rule as key.

const specMagic = "DCSPEC1\n"

type specHeader struct {
	Seed     uint64            `json:"seed"`
	PoolSize int               `json:"pool_size"`
	Params   specParams        `json:"params"`
	Sections map[string][2]int `json:"sections"` // name: offset, length
}

// specParams are params as the script reads them, with the constants the
// workloads share.
type specParams struct {
	N1, N2, N3, N4, N5, N6, Hot6 int
	Limit                        int64
	WindowS, SettleS             float64
	TTLS, CheckS                 float64
	ValueW1, ValueW4, ValueW6    int
	SaltW1, SaltW3, SaltW4       int
	SaltW5, SaltW6               int
	WorkersW2, WorkersW3, Procs  int
	CacheBudget                  int64
	N8, Keys8, SaltW8            int
	TTL8S                        float64
	N11, ValueW11, SaltW11       int
	Limit11                      int64
}

func writeSpec(path string, p params) error {
	pl := newPools()
	keys := keyRange(0, p.keys())
	var blob []byte
	offs := make([]uint32, 0, len(keys)+1)
	for _, k := range keys {
		offs = append(offs, uint32(len(blob)))
		blob = append(blob, k...)
	}
	offs = append(offs, uint32(len(blob)))
	sections := []struct {
		name string
		data []byte
	}{
		{"pool_random", pl.random},
		{"pool_text", pl.text},
		{"keys", blob},
		{"key_offsets", u32s(offs)},
		{"w1_order", u32s(orderW1(p))},
		{"w2_gets", u32s(getsW2(p))},
		{"w3_ops", u32s(opsW3(p))},
		{"w4_gets", u32s(getsW4(p))},
	}
	h := specHeader{
		Seed:     seed,
		PoolSize: poolSize,
		Params: specParams{
			N1: p.N1, N2: p.N2, N3: p.N3, N4: p.N4, N5: p.N5, N6: p.N6, Hot6: p.Hot6,
			Limit:   p.Limit,
			WindowS: p.Window.Seconds(), SettleS: settleW5.Seconds(), TTLS: ttlW5.Seconds(), CheckS: checkW5.Seconds(),
			ValueW1: valueW1, ValueW4: valueW4, ValueW6: valueW6,
			SaltW1: saltW1, SaltW3: saltW3, SaltW4: saltW4, SaltW5: saltW5, SaltW6: saltW6,
			WorkersW2: workersW2, WorkersW3: workersW3, Procs: procsW7,
			CacheBudget: cacheBudget,
			N8:          p.N8, Keys8: keysW8, SaltW8: saltW8, TTL8S: ttlW8.Seconds(),
			N11: p.N11, ValueW11: valueW11, SaltW11: saltW11, Limit11: limitW11,
		},
		Sections: map[string][2]int{},
	}
	off := 0
	for _, s := range sections {
		h.Sections[s.name] = [2]int{off, len(s.data)}
		off += len(s.data)
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(specMagic)
	binary.Write(w, binary.LittleEndian, uint32(len(hdr)))
	w.Write(hdr)
	for _, s := range sections {
		w.Write(s.data)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func u32s(xs []uint32) []byte {
	b := make([]byte, 0, 4*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}
