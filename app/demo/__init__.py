"""`povtor demo`: the real worker against local stand-ins, with its business, phones, simulated
people, live display and the safety rules that keep demos and real runs apart."""
