package web

// NaturalCompare is the server's order of site names, for the browser test.
var NaturalCompare = naturalCompare
