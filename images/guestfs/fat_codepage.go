package guestfs

// cp437 is the upper half of code page 437, the OEM code page a FAT short name is in by default
// (Linux's vfat codepage=437): a short name such as "JüRGEN" stores ü as 0x81.
const cp437 = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ "

func decodeOEM(b []byte) string {
	out := make([]rune, 0, len(b))
	r := []rune(cp437)
	for _, c := range b {
		if c < 0x80 {
			out = append(out, rune(c))
		} else {
			out = append(out, r[c-0x80])
		}
	}
	return string(out)
}
