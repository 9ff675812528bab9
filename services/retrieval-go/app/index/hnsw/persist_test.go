package hnsw

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func buildClustered(t testing.TB, n int) (*Graph, [][]float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(21, 22))
	vecs := clustered(r, n, 16, 6)
	g := New(Parameters{M: 6, EfConstruction: 30, Seed: 5})
	for i, v := range vecs {
		g.Insert(uint32(i), v)
	}
	return g, vecs
}

func TestEncodeDecodeRenumbers(t *testing.T) {
	g, vecs := buildClustered(t, 800)
	// Reverse the ids and leave a hole at 0, as the index does when it
	// renumbers slots densely behind documents without vectors.
	order := []uint32{NoNode}
	for i := len(vecs) - 1; i >= 0; i-- {
		order = append(order, uint32(i))
	}
	data, err := g.Encode(nil, order)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data, g.Parameters(), func(id uint32) []float32 { return vecs[order[id]] })
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != g.Len() || back.Contains(0) || !back.Contains(800) {
		t.Fatalf("decoded %d nodes (want %d), contains 0: %v", back.Len(), g.Len(), back.Contains(0))
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 30 {
		q := unit(r, 16)
		want := g.Search(q, 10, 40, nil)
		got := back.Search(q, 10, 40, nil)
		for i := range want {
			want[i].ID = uint32(len(vecs)) - want[i].ID // the same node, renumbered
		}
		if !slices.Equal(got, want) {
			t.Fatalf("decoded graph answers %v, the original %v", got, want)
		}
	}
	// The decoded graph keeps growing like any other.
	back.Insert(801, unit(r, 16))
	if back.Len() != g.Len()+1 {
		t.Errorf("insert after decode: %d nodes", back.Len())
	}
}

func TestEncodeRejectsIncompleteOrder(t *testing.T) {
	g, _ := buildClustered(t, 50)
	for _, tc := range []struct {
		name  string
		order []uint32
	}{
		{"missing node", []uint32{0, 1, 2}},
		{"duplicate", append(seq(50), 3)},
		{"unknown id", append(seq(50), 99)},
	} {
		if _, err := g.Encode(nil, tc.order); err == nil {
			t.Errorf("%s: Encode accepted %v", tc.name, tc.order)
		}
	}
}

func TestDecodeRejectsDamageAndOtherParameters(t *testing.T) {
	g, vecs := buildClustered(t, 300)
	data, err := g.Encode(nil, seq(300))
	if err != nil {
		t.Fatal(err)
	}
	vec := func(id uint32) []float32 { return vecs[id] }
	if _, err := Decode(data, Parameters{M: 8, EfConstruction: 30}, vec); !errors.Is(err, ErrIncompatible) {
		t.Errorf("other M: %v, want ErrIncompatible", err)
	}
	if _, err := Decode(data, g.Parameters(), func(uint32) []float32 { return make([]float32, 8) }); !errors.Is(err, ErrIncompatible) {
		t.Errorf("other dimension: %v, want ErrIncompatible", err)
	}
	for _, cut := range []int{0, 1, 12, len(data) / 2, len(data) - 1} {
		if _, err := Decode(data[:cut], g.Parameters(), vec); err == nil {
			t.Errorf("decoding the first %d of %d bytes succeeded", cut, len(data))
		}
	}
	if _, err := Decode(append(slices.Clone(data), 0), g.Parameters(), vec); err == nil {
		t.Error("trailing byte accepted")
	}
}

func FuzzDecode(f *testing.F) {
	g, vecs := buildClustered(f, 40)
	data, err := g.Encode(nil, seq(40))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte{encodingVersion, 6, 30})
	f.Fuzz(func(t *testing.T, b []byte) {
		back, err := Decode(b, g.Parameters(), func(id uint32) []float32 {
			return vecs[int(id)%len(vecs)]
		})
		if err != nil {
			return
		}
		// Whatever decodes must be searchable without panicking.
		back.Search(vecs[0], 5, 20, nil)
	})
}

func seq(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}
