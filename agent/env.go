package main

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// envPrefix starts every environment override: GPS_AGENT_TRUCK_ID sets truck_id, GPS_AGENT_RECEIVER_DEVICE sets
// [receiver] device, and so on for every key, so that one image and one config file serve a whole fleet.
const envPrefix = "GPS_AGENT_"

// applyEnv overrides cfg's keys from the environment (lookup is os.LookupEnv outside tests). Values are read as
// in TOML files: numbers, durations like "1s", "auto" for baud, arrays like ["AT+QGPS=1"]. An error names the
// variable.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	return envStruct(reflect.ValueOf(cfg).Elem(), envPrefix, lookup)
}

func envStruct(v reflect.Value, prefix string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		name := prefix + strings.ToUpper(key)
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct && !isTextValue(fv):
			if err := envStruct(fv, name+"_", lookup); err != nil {
				return err
			}
			continue
		case fv.Kind() == reflect.Pointer: // optional tables such as [kinesis.iot] come from the file only
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, s, err)
		}
	}
	return nil
}

func isTextValue(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

func setFromString(v reflect.Value, s string) error {
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		// Baud takes "auto" as text and numbers as numbers, as in the file.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && v.CanInt() {
			v.SetInt(n)
			return nil
		}
		return tu.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(n)
	case reflect.Slice:
		// A list is written as in the file, a TOML array: GPS_AGENT_RECEIVER_AT_INIT='["AT+QGPS=1"]'.
		holder := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: v.Type(), Tag: `toml:"v"`}}))
		if err := toml.Unmarshal([]byte("v = "+s), holder.Interface()); err != nil {
			return fmt.Errorf("not a TOML array like [\"AT+QGPS=1\"]")
		}
		v.Set(holder.Elem().Field(0))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
