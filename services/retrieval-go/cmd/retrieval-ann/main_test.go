package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	opts, err := parseFlags([]string{"-datasets", " structured, random", "-ef-search", "4, 16", "-n", "300", "-o", "r.json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := opts.ann
	if !slices.Equal(cfg.Datasets, []string{"structured", "random"}) || !slices.Equal(cfg.Params.EfSearch, []int{4, 16}) ||
		cfg.N != 300 || cfg.Queries != 1000 || cfg.Params.M != 16 || cfg.Seed != 1 || opts.out != "r.json" || opts.cpuProfile != "" {
		t.Errorf("parseFlags = %+v", opts)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"stray argument", []string{"extra"}, `unexpected argument "extra"`},
		{"ef-search not a number", []string{"-ef-search", "1,x"}, `efSearch "x" is not a positive number`},
		{"ef-search zero", []string{"-ef-search", "0"}, `efSearch "0" is not a positive number`},
		{"m too small", []string{"-m", "1"}, "m must be at least 2, n at least 10"},
		{"n below K", []string{"-n", "5"}, "m must be at least 2, n at least 10"},
		{"no queries", []string{"-queries", "0"}, "queries and dim positive"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: error = %v, want flag.ErrHelp", err)
	}
}
