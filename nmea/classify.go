package nmea

import (
	"bytes"

	gonmea "github.com/adrianmo/go-nmea"
)

// sentenceClass says what the decoder does with a checksummed sentence,
// decided from its address field alone, before any parsing.
type sentenceClass uint8

const (
	classParse   sentenceClass = iota // a type the assembler reads (or a malformed address go-nmea rejects)
	classSkip                         // a type go-nmea knows and no fix uses: counted, never parsed
	classUnknown                      // a type go-nmea does not know: counted in UnknownType
)

// knownType reports whether go-nmea v1.10.0 parses the type after start
// ('$' or '!'), by the type its ParsePrefix gives (proprietary "$PGRME" is
// type "GRME"; a query "$GPECQ" is type "Q"): the cases of
// SentenceParser.Parse. TestClassifyMatchesGoNMEA holds the list to go-nmea.
func knownType(start byte, typ []byte) bool {
	if start == '!' {
		switch string(typ) {
		case "ABM", "BBM", "TTD", "VDM", "VDO":
			return true
		}
		return false
	}
	switch string(typ) {
	case "AAM", "ACK", "ACN", "ALA", "ALC", "ALF", "ALR", "APB", "ARC", "BEC", "BOD", "BWC", "BWR", "BWW",
		"DBK", "DBS", "DBT", "DOR", "DPT", "DSC", "DSE", "DTM", "EVE", "FIR", "GGA", "GLL", "GNS", "GSA",
		"GSV", "HBT", "HDG", "HDM", "HDT", "HSC", "MDA", "MTA", "MTW", "MWD", "MWV", "OSD", "RMB", "RMC",
		"ROT", "RPM", "RSA", "RSD", "RTE", "THS", "TLB", "TLL", "TTM", "TXT", "VBW", "VDR", "VHW", "VLW",
		"VPW", "VSD", "VTG", "VWR", "VWT", "WPL", "XDR", "XTE", "ZDA", "PGN", "CDIN", "GRME", "HTRO",
		"MTK001", "RDID", "SKPDPT", "SONCMS", "Q":
		return true
	}
	return false
}

// assembledType returns the msgType of a type the assembler reads after
// '$', msgOther for any other.
func assembledType(typ []byte) msgType {
	if len(typ) != 3 {
		return msgOther
	}
	switch string(typ) {
	case "RMC":
		return msgRMC
	case "GGA":
		return msgGGA
	case "GNS":
		return msgGNS
	case "GLL":
		return msgGLL
	case "VTG":
		return msgVTG
	case "GSA":
		return msgGSA
	case "ZDA":
		return msgZDA
	case "GSV":
		return msgGSV
	}
	return msgOther
}

// address returns the sentence's talker and type as go-nmea's ParsePrefix
// splits them: the address runs from after the start character to the
// first ',' or '*' (go-nmea's fields end at the first '*'). ok is false for
// an empty address, which go-nmea rejects.
func address(line []byte) (talker, typ []byte, ok bool) {
	end := 1
	for end < len(line) && line[end] != ',' && line[end] != '*' {
		end++
	}
	a := line[1:end]
	switch {
	case len(a) == 0:
		return nil, nil, false
	case a[0] == 'P':
		return a[:1], a[1:], true
	case len(a) == 5 && a[4] == 'Q':
		return a[:2], a[4:], true
	case len(a) == 5:
		return a[:2], a[2:], true
	}
	return nil, a, true
}

// classify decides from the address alone whether line is worth parsing.
func classify(line, typ []byte, ok bool) sentenceClass {
	switch {
	case !ok, line[0] == '$' && assembledType(typ) != msgOther:
		return classParse
	case bytes.IndexByte(line, '\\') >= 0:
		return classParse // go-nmea looks for a tag block, and rejects it
	case knownType(line[0], typ):
		return classSkip
	}
	return classUnknown
}

// tolerate clears fields a Fix never uses before go-nmea parses them, so that
// a receiver's quirk in one of them does not cost the whole sentence (the
// Motorola Oncore sends the RMC magnetic variation direction as "N").
func tolerate(s *gonmea.BaseSentence) error {
	switch s.Type {
	case gonmea.TypeRMC:
		for i := 9; i <= 10 && i < len(s.Fields); i++ { // magnetic variation, direction
			s.Fields[i] = ""
		}
	case gonmea.TypeGGA:
		for i := 9; i < len(s.Fields); i++ { // units, geoid separation, DGPS age and station
			s.Fields[i] = ""
		}
		// Quality 7 (manual input) and 8 (simulator) are positions no
		// satellite measured: no fix for a tracker. go-nmea rejects them as
		// unknown values, which would count them as unparsable.
		if len(s.Fields) > 5 && (s.Fields[5] == "7" || s.Fields[5] == "8") {
			s.Fields[5] = "0"
		}
	}
	return nil
}
