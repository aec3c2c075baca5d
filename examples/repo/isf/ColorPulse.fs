/*{
    "DESCRIPTION": "Concentric colour pulses",
    "CREDIT": "imageprograms example authors",
    "ISFVSN": "2",
    "CATEGORIES": ["Generator"],
    "INPUTS": [
        {"NAME": "speed", "TYPE": "float", "DEFAULT": 1.0, "MIN": 0.0, "MAX": 4.0},
        {"NAME": "tint", "TYPE": "color", "DEFAULT": [1.0, 0.6, 0.2, 1.0]}
    ]
}*/

void main() {
    vec2 p = isf_FragNormCoord * 2.0 - 1.0;
    p.x *= RENDERSIZE.x / RENDERSIZE.y;
    float d = length(p);
    float w = 0.5 + 0.5 * sin(d * 20.0 - TIME * speed * 4.0);
    vec3 rainbow = 0.5 + 0.5 * cos(TIME + d * 3.0 + vec3(0.0, 2.0, 4.0));
    vec3 col = mix(rainbow, tint.rgb, 0.3) * w;
    gl_FragColor = vec4(col, 1.0);
}
