// SPDX-License-Identifier: MIT
// Layered sine waves.
#version 330

uniform float iTime;
uniform vec2 u_resolution;

out vec4 fragColor;

void main()
{
    vec2 uv = gl_FragCoord.xy / u_resolution;
    vec3 col = vec3(0.02, 0.03, 0.08);
    for (int i = 4; i >= 0; i--)
    {
        float fi = float(i);
        float h = 0.2 + 0.15 * fi + 0.05 * sin(uv.x * (6.0 + fi * 2.0) + iTime * (1.0 + 0.3 * fi));
        vec3 layer = 0.5 + 0.5 * cos(fi * 0.9 + iTime * 0.3 + vec3(0.0, 2.0, 4.0));
        col = mix(col, layer, step(uv.y, h) * 0.6);
    }
    fragColor = vec4(col, 1.0);
}
