// SPDX-License-Identifier: Apache-2.0
// Copyright 2024 Rafael Quintero
#version 330

uniform float u_time;
uniform vec2 u_resolution;

out vec4 fragColor;

void main()
{
    vec2 p = (gl_FragCoord.xy - 0.5 * u_resolution) / u_resolution.y;
    vec3 col = vec3(0.03, 0.0, 0.08);
    if (p.y < 0.0)
    {
        // floor grid in perspective, scrolling towards the viewer
        float z = 0.3 / -p.y;
        vec2 g = vec2(p.x * z, z + u_time * 2.0);
        vec2 line = 0.5 - abs(fract(g) - 0.5);
        float grid = smoothstep(0.06, 0.0, min(line.x, line.y));
        vec3 neon = 0.5 + 0.5 * cos(u_time + g.y * 0.2 + vec3(0.0, 2.0, 4.0));
        col += neon * grid / (1.0 + z * 0.3);
    }
    else
    {
        vec3 glow = 0.5 + 0.5 * cos(u_time * 0.7 + vec3(0.0, 4.0, 2.0));
        col += mix(vec3(1.0, 0.3, 0.6), glow, 0.5) * exp(-p.y * 4.0) * 0.7;
    }
    fragColor = vec4(col, 1.0);
}
